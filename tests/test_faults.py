"""The fault suite (issue 36): each fault a cluster user meets, replayed at the moment it strikes, and what the run
does about it. Marker `fault`; the cases that need CLI training runs are `slow` too (CI's slow tier)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medvqa_rl.bookkeeping.checkpoints import OWNER_FILE, TRAINER_DIR
from medvqa_rl.reuse.resumable import resumable_run
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, compose_config

pytestmark = pytest.mark.fault


def _history_steps(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if "loss" in row]


# ------------------------------------------------- 1. a run resumed from its final checkpoint trains nothing --

@pytest.mark.parametrize("lora", [False, True])
def test_a_run_resumed_from_its_final_checkpoint_trains_nothing_and_ends_as_the_unbroken_run(tiny_cache, tmp_path,
                                                                                            lora):
    """Killed after its last checkpoint (during the final evaluation): the rerun restores checkpoint-2 of 2
    without train() (which would run step 3) and records what the unbroken run recorded."""
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [
        "method.save_steps=2", "eval.similarity_model=null", "keep_checkpoints=true", f"cache_dir={tiny_cache}",
        f"method.lora.enabled={str(lora).lower()}", "eval.judge_score=false"])
    unbroken = run(cfg, tmp_path / "unbroken")
    killed = tmp_path / "killed"
    (killed / TRAINER_DIR).mkdir(parents=True)
    shutil.copytree(tmp_path / "unbroken" / TRAINER_DIR / "checkpoint-2", killed / TRAINER_DIR / "checkpoint-2")
    shutil.copy(tmp_path / "unbroken" / TRAINER_DIR / OWNER_FILE, killed / TRAINER_DIR)
    for name in ("init_metrics.json", "init_predictions.jsonl"):
        shutil.copy(tmp_path / "unbroken" / name, killed)
    resumed = resumable_run(run, cfg, killed)
    assert resumed["train/resumed_from_step"] == 2
    assert resumed["train/steps"] == unbroken["train/steps"] == 2
    assert _history_steps(killed) == _history_steps(tmp_path / "unbroken") == [1, 2]
    for key in ("test/accuracy", "test/format_rate", "test/completion_tokens", "train/examples"):
        assert resumed[key] == unbroken[key], key
    assert resumed["test/perplexity"] == pytest.approx(unbroken["test/perplexity"], rel=1e-5)


# ------------------------------------------------ 2-4. a judge that answers oddly or returns a malformed reply --

JUDGE_TEMPLATE = "question {question} reference {reference} reasoning {reasoning} consistent ?"


@pytest.fixture
def chat_server(monkeypatch):
    from .helpers.fake_chat_server import FakeChatServer

    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    server = FakeChatServer()
    yield server
    server.close()


def _judge(server, on_failure="error"):
    from medvqa_rl.judges import OpenAIJudge

    return OpenAIJudge(server.url, "judge-model", JUDGE_TEMPLATE, api_key_env=None, timeout=5.0, max_retries=0,
                       on_failure=on_failure)


def _items(n=2):
    from medvqa_rl.judges import JudgeItem

    return [JudgeItem("Where?", "left upper", f"the lesions are at left upper {i}") for i in range(n)]


@pytest.mark.parametrize("reply,verdict", [("Answer: Yes", 1.0), ("**Yes**, consistent.", 1.0), ("No.", 0.0),
                                           ("The reasoning is consistent: no", 0.0), ("YES", 1.0),
                                           ("Answer: No, it is not; yes would be wrong", 0.0)])
def test_a_verdict_is_read_wherever_the_reply_states_it(chat_server, reply, verdict):
    chat_server.mode, chat_server.reply = "reply", reply
    judge = _judge(chat_server)
    assert judge(_items()) == [verdict, verdict] and judge.failures == 0


def test_a_reply_without_a_verdict_is_a_failed_verdict_not_a_no(chat_server):
    from medvqa_rl.judges import JudgeError

    chat_server.mode, chat_server.reply = "reply", "I cannot judge this."
    with pytest.raises(JudgeError, match=r"base_url='http://127\.0\.0\.1.*no yes/no verdict.*I cannot judge"):
        _judge(chat_server)(_items())
    judge = _judge(chat_server, on_failure="zero")
    assert judge(_items()) == [0.0, 0.0]  # the reward's view
    assert judge.verdicts(_items()) == [None, None]  # the evaluation's view: not a "no"
    assert judge.failures == 4 and judge.requests == 4


@pytest.mark.parametrize("mode,error", [("not_json", "not JSON"), ("no_choices", "no choice")])
def test_a_malformed_reply_names_the_judge_and_follows_on_failure(chat_server, mode, error):
    from medvqa_rl.judges import JudgeError

    chat_server.mode = mode
    with pytest.raises(JudgeError, match=rf"OpenAIJudge\(model='judge-model', base_url='{chat_server.url}'\).*{error}"):
        _judge(chat_server)(_items())
    judge = _judge(chat_server, on_failure="zero")
    assert judge.verdicts(_items()) == [None, None] and judge.failures == 2


def test_a_judge_score_with_failures_is_null_with_its_counts():
    from medvqa_rl.evaluation import summarize

    rows = [{"correct": True, "well_formed": True, "completion_tokens": 3, "question_type": "location",
             "options": ["a", "b"], "judge_verdict": v} for v in (1.0, None, 0.0, 1.0)]
    metrics = summarize(rows)
    assert metrics["judge_score"] is None and metrics["judge_score_of_judged"] == pytest.approx(200 / 3)
    assert summarize([{**r, "judge_verdict": 1.0} for r in rows])["judge_score"] == 100.0


def test_a_run_whose_judge_fails_under_on_failure_zero_records_the_failures(tiny_cache, tmp_path, chat_server):
    """judge.on_failure=zero with a server answering 500: the run finishes; metrics.json says the judge score is
    not a number (null) and how many requests of training and of each evaluation failed."""
    chat_server.mode = "fail"
    cfg = compose_config(SMALL_TINY + SMALL_RUN + ["method.max_steps=1",
        f"cache_dir={tiny_cache}", "eval.similarity_model=null", "reward=semantic", "judge=openai",
        f"judge.base_url={chat_server.url}", "judge.api_key_env=null", "judge.on_failure=zero", "judge.max_retries=0",
        "judge.timeout=5"])
    record = run(cfg, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for prefix in ("test/", "init/test/"):
        assert saved[prefix + "judge_score"] is None, {k: v for k, v in saved.items() if "judge" in k or "format" in k}
        assert saved[prefix + "judge/failures"] == saved[prefix + "judge/requests"] > 0
    assert saved["train/judge/failures"] == saved["train/judge/requests"] > 0
    assert record["test/judge_score"] is None


# ------------------------------------------ 8. SIGTERM before or after training: one handler for the whole run --

def _signal_during_the_final_evaluation(monkeypatch, run_dir: Path, signum=signal.SIGTERM):
    """evaluate() of medvqa_rl.run, sending the process `signum` once training has ended (model/ saved)."""
    import os

    import medvqa_rl.run as run_module

    real = run_module.evaluate

    def evaluate(*args, **kwargs):
        if (run_dir / "model").is_dir():
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "evaluate", evaluate)


def test_sigterm_during_the_final_evaluation_is_a_preemption_and_the_rerun_trains_nothing(tiny_cache, tmp_path,
                                                                                         monkeypatch):
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [
        "method.save_steps=2", "eval.similarity_model=null", "eval.judge_score=false", f"cache_dir={tiny_cache}"])
    _signal_during_the_final_evaluation(monkeypatch, tmp_path)
    with pytest.raises(Exception, match="stopped on SIGTERM outside training") as raised:
        resumable_run(run, cfg, tmp_path)
    assert type(raised.value).__name__ == "Preempted"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))
    failure = json.loads((tmp_path / "failure.json").read_text())
    assert failure["status"] == "preempted" and not (tmp_path / "metrics.json").exists()
    monkeypatch.undo()
    resumed = resumable_run(run, cfg, tmp_path)
    assert resumed["train/resumed_from_step"] == 2 and resumed["train/steps"] == 2
    assert _history_steps(tmp_path) == [1, 2]
    assert not (tmp_path / "failure.json").exists()
