"""The fault suite (issue 36): each fault a cluster user meets, replayed at the moment it strikes, and what the run
does about it. Marker `fault`; the cases that need CLI training runs are `slow` too (CI's slow tier)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medvqa_rl.bookkeeping.checkpoints import TRAINER_DIR
from medvqa_rl.reuse.resumable import resumable_run
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, compose_config
from .helpers.killed_runs import killed_after_checkpoint

pytestmark = pytest.mark.fault


def _history_steps(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if "loss" in row]


# ------------------------------------------------- 1. a run resumed from its final checkpoint trains nothing --

@pytest.mark.parametrize("lora", [False, pytest.param(True, marks=pytest.mark.slow)])  # LoRA: the slow tier
def test_a_run_resumed_from_its_final_checkpoint_trains_nothing_and_ends_as_the_unbroken_run(tiny_cache, tmp_path,
                                                                                            lora):
    """Killed after its last checkpoint (during the final evaluation): the rerun restores checkpoint-2 of 2
    without train() (which would run step 3) and records what the unbroken run recorded."""
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [
        "method.save_steps=2", "eval.similarity_model=null", "keep_checkpoints=true", f"cache_dir={tiny_cache}",
        f"method.lora.enabled={str(lora).lower()}", "eval.judge_score=false"])
    unbroken = run(cfg, tmp_path / "unbroken")
    killed = killed_after_checkpoint(tmp_path / "unbroken", tmp_path / "killed", 2)
    assert (killed / TRAINER_DIR / "checkpoint-2" / "checksums.json").is_file()  # 11: the run's checkpoints carry one
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


# ------------------------------------------------------------- 9. two processes on one run dir: a lock --

def _recorder_cfg():
    return compose_config(["wandb.mode=disabled"])


def test_a_second_process_on_a_held_run_dir_is_refused_naming_the_holder(tmp_path):
    import os
    import socket

    from medvqa_rl.reuse.resumable import RunDirBusy, run_dir_lock

    from .test_resumable import Recorder

    recorder = Recorder()
    (tmp_path / "predictions.jsonl").write_text("{}\n")  # the holder's live file
    with run_dir_lock(tmp_path):  # a separate lock (its own file descriptor), as another process holds it
        with pytest.raises(RunDirBusy, match=rf"pid {os.getpid()} on host {socket.gethostname()}"):
            resumable_run(recorder, _recorder_cfg(), tmp_path)
    assert recorder.calls == 0  # nothing ran...
    assert not (tmp_path / "failure.json").exists() and not (tmp_path / "previous").exists()  # ...nothing moved
    resumable_run(recorder, _recorder_cfg(), tmp_path)  # released: the next one runs
    assert recorder.calls == 1


def test_the_lock_dies_with_its_process(tmp_path):
    """A killed holder leaves nothing that refuses the rerun (an OS lock, not a lock file's existence)."""
    from medvqa_rl.reuse.resumable import run_dir_lock

    from .test_resumable import Recorder

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock; "
        f"lock = FileLock({str(tmp_path / '.run.lock')!r}); lock.acquire(); print('held', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    from medvqa_rl.reuse.resumable import RunDirBusy

    with pytest.raises(RunDirBusy):
        with run_dir_lock(tmp_path):
            pass
    holder.kill()
    holder.wait()
    recorder = Recorder()
    resumable_run(recorder, _recorder_cfg(), tmp_path)
    assert recorder.calls == 1


# --------------------------------------------- 7. a full disk: caches best effort, failure records atomic --

def _enospc_under(monkeypatch, root: Path):
    """Every Path.write_text under root raises ENOSPC, as on a full disk or an exhausted home quota."""
    import errno

    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if str(self).startswith(str(root)):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)


def test_a_full_cache_dir_costs_the_cache_not_the_run(tmp_path, monkeypatch, caplog):
    from medvqa_rl.bookkeeping.init_cache import read_cached_init_eval, write_cached_init_eval
    from medvqa_rl.bookkeeping.provenance import file_sha256

    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"x" * 1000)
    cache = tmp_path / "cache"
    _enospc_under(monkeypatch, cache)
    assert len(file_sha256(weights, cache)) == 64  # the digest, uncached
    write_cached_init_eval(str(cache), "k", {"accuracy": 50.0}, [])
    assert read_cached_init_eval(str(cache), "k") is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and all("No space left" in w and str(cache) in w for w in warnings)
    assert not list(cache.rglob("*.partial"))  # no half-written file left


def test_a_full_run_dir_leaves_no_empty_failure_record_and_the_log_keeps_the_reason(tmp_path, monkeypatch, caplog):
    from medvqa_rl.reuse.resumable import write_failure

    (tmp_path / "failure.json").write_text('{"status": "failed", "message": "the earlier attempt"}')
    _enospc_under(monkeypatch, tmp_path)
    write_failure(tmp_path, RuntimeError("judge down"), "abc")
    assert json.loads((tmp_path / "failure.json").read_text())["message"] == "the earlier attempt"  # not truncated
    assert not list(tmp_path.glob("*.partial"))
    assert any("judge down" in r.getMessage() and "No space left" in r.getMessage() for r in caplog.records)


def test_a_full_run_dir_keeps_the_earlier_predictions_history_and_config_whole(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from medvqa_rl.bookkeeping.run_record import write_jsonl, write_resolved_config

    write_jsonl(tmp_path, [{"id": "q1", "correct": True}], "predictions.jsonl")
    write_resolved_config(tmp_path, OmegaConf.create({"seed": 0}))
    before = {name: (tmp_path / name).read_text() for name in ("predictions.jsonl", "resolved_config.yaml")}
    _enospc_under(monkeypatch, tmp_path)
    with pytest.raises(OSError):
        write_jsonl(tmp_path, [{"id": f"q{i}", "correct": False} for i in range(100)], "predictions.jsonl")
    with pytest.raises(OSError):
        write_resolved_config(tmp_path, OmegaConf.create({"seed": 1}))
    assert {name: (tmp_path / name).read_text() for name in before} == before  # not cut off, not emptied
    assert not list(tmp_path.glob("*.partial"))


def test_a_full_dataset_cache_builds_the_records_in_memory(tmp_path, monkeypatch, caplog):
    import errno

    from datasets import DatasetDict

    root, build = _dataset_source(tmp_path)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DatasetDict, "save_to_disk", full)
    from medvqa_rl.data.record_cache import cached_splits

    splits, skipped = cached_splits({"name": "t", "path": str(root)}, root, tmp_path / "cache", build)
    assert len(splits["train"]) == 50 and skipped == {"bad_row": 1}
    assert any("dataset cache entry not written" in r.getMessage() and str(tmp_path / "cache") in r.getMessage()
               for r in caplog.records)
    assert not [p for p in (tmp_path / "cache" / "datasets").iterdir() if p.suffix != ".lock"]


# ------------------------------------------ 6. a corrupt cache entry is named, set aside and rebuilt --

def _dataset_source(tmp_path: Path):
    from collections import Counter

    from datasets import Dataset

    root = tmp_path / "source"
    root.mkdir()
    (root / "rows.csv").write_text("a\n1\n")
    builds = []

    def build():
        builds.append(1)
        return ({"train": Dataset.from_dict({"a": list(range(50)), "b": ["x" * 200] * 50}),
                 "test": Dataset.from_dict({"a": [1]})}, Counter(bad_row=1))

    build.count = builds
    return root, build


@pytest.mark.parametrize("damage", ["arrow", "skipped"])
def test_a_corrupt_dataset_cache_entry_is_named_set_aside_and_rebuilt(tmp_path, caplog, damage):
    from medvqa_rl.data.record_cache import cached_splits

    root, build = _dataset_source(tmp_path)
    cfg, cache = {"name": "t", "path": str(root)}, tmp_path / "cache"
    cached_splits(cfg, root, cache, build)
    (entry,) = [p for p in (cache / "datasets").iterdir() if p.is_dir()]
    if damage == "arrow":
        (arrow,) = (entry / "train").glob("*.arrow")
        with arrow.open("r+b") as f:
            f.truncate(arrow.stat().st_size // 2)
    else:
        (entry / "skipped.json").write_text('{"bad_')
    splits, skipped = cached_splits(cfg, root, cache, build)
    assert len(build.count) == 2 and len(splits["train"]) == 50 and skipped == {"bad_row": 1}
    assert any(str(entry) in r.getMessage() and "set aside" in r.getMessage() for r in caplog.records)
    assert len(list((cache / "datasets").glob(f"{entry.name}.corrupt-*"))) == 1  # kept for inspection
    cached_splits(cfg, root, cache, build)
    assert len(build.count) == 2  # the rebuilt entry serves the next run


def test_a_truncated_built_tiny_model_is_named_set_aside_and_built_again(tmp_path, monkeypatch, caplog):
    import torch
    from safetensors.torch import save_file

    from medvqa_rl.models import tiny_inits

    spec = {"seed": 0}
    root = tmp_path / f"tiny-{tiny_inits.cache_key(spec)}"
    for stage in tiny_inits.STAGES:
        (root / stage).mkdir(parents=True)
        (root / stage / "config.json").write_text("{}")
        save_file({"w": torch.zeros(1000)}, str(root / stage / "model.safetensors"))
    weights = root / "instruct" / "model.safetensors"
    with weights.open("r+b") as f:
        f.truncate(weights.stat().st_size - 100)
    built = []
    monkeypatch.setattr(tiny_inits, "_build", lambda spec, root: built.append(root))
    assert tiny_inits.built_root(spec, tmp_path) == root
    assert built == [root]
    assert any("instruct/model.safetensors" in r.getMessage() and "set aside" in r.getMessage()
               for r in caplog.records)
    assert list(root.glob("corrupt-*/instruct/model.safetensors"))


# ------------------------------------------------ 10. values that would fail late are refused up front --

@pytest.mark.parametrize("override,key", [("eval.batch_size=0", "eval.batch_size"),
                                          ("eval.max_new_tokens=0", "eval.max_new_tokens"),
                                          ("method.temperature=0", "method.temperature"),
                                          ("method.save_steps=0", "method.save_steps")])
def test_values_that_fail_late_are_refused_naming_the_key(override, key):
    from medvqa_rl.config_checks import ConfigError, check_config

    with pytest.raises(ConfigError, match=rf"^{key} must be"):
        check_config(compose_config([override]))


def test_a_skipped_finished_run_drops_the_checkpoints_its_kill_left(tmp_path):
    """Killed after metrics.json, before removing its checkpoints: the rerun skips it and removes them."""
    from .test_resumable import Recorder

    recorder = Recorder()
    resumable_run(recorder, _recorder_cfg(), tmp_path)
    (tmp_path / TRAINER_DIR / "checkpoint-2").mkdir(parents=True)
    resumable_run(recorder, _recorder_cfg(), tmp_path)
    assert recorder.calls == 1 and not (tmp_path / TRAINER_DIR / "checkpoint-2").exists()


# ------------------------------------- 11. a weights file with a zeroed block (unflushed at a node crash) --

def test_a_checkpoint_with_a_zeroed_block_fails_its_checksum_and_the_previous_is_resumed(tmp_path, caplog):
    from .test_checkpoint_resume import ABC, _fake_checkpoint, _own

    from medvqa_rl.bookkeeping.checkpoints import resumable_checkpoint

    _fake_checkpoint(tmp_path, 2)
    newest = _fake_checkpoint(tmp_path, 4)
    _own(tmp_path, ABC)
    weights = newest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-32:] = bytes(32)  # same length, headers intact: only the checksum can tell
    weights.write_bytes(bytes(data))
    assert resumable_checkpoint(tmp_path, ABC).name == "checkpoint-2"
    assert "model.safetensors does not match its checksum" in caplog.text
    (tmp_path / TRAINER_DIR / "checkpoint-2" / "checksums.json").unlink()  # killed before its manifest
    assert resumable_checkpoint(tmp_path, ABC) is None


@pytest.mark.parametrize("damage", ['{"metrics": {"test/acc', "", '{"metrics": {}}'])
def test_a_corrupt_init_evaluation_entry_is_named_set_aside_and_recomputed(tmp_path, caplog, damage):
    from medvqa_rl.bookkeeping.init_cache import CACHE_FOLDER, read_cached_init_eval, write_cached_init_eval

    write_cached_init_eval(str(tmp_path), "k", {"test/accuracy": 40.0}, [{"id": "q1", "correct": True}])
    entry = tmp_path / CACHE_FOLDER / "k.json"
    assert read_cached_init_eval(str(tmp_path), "k") == ({"test/accuracy": 40.0}, [{"id": "q1", "correct": True}])
    entry.write_text(damage)  # cut off, emptied, or missing its predictions
    assert read_cached_init_eval(str(tmp_path), "k") is None  # the caller evaluates again
    assert any(str(entry) in r.getMessage() and "set aside" in r.getMessage() for r in caplog.records)
    (aside,) = (tmp_path / CACHE_FOLDER).glob("k.json.corrupt-*")
    assert aside.read_text() == damage and not entry.exists()  # kept for inspection; the next write replaces it


def test_a_corrupt_digest_entry_is_named_set_aside_and_recomputed(tmp_path, caplog):
    import hashlib

    from medvqa_rl.bookkeeping.provenance import file_sha256

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights" * 1000)
    truth = hashlib.sha256(weights.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    assert file_sha256(weights, cache) == truth
    assert not [r for r in caplog.records if "digest" in r.getMessage()]  # a missing entry is no fault: no warning
    (entry,) = (cache / "digests").glob("*.json")
    entry.write_text('{"sha2')
    assert file_sha256(weights, cache) == truth
    assert any(str(entry) in r.getMessage() and "set aside" in r.getMessage() for r in caplog.records)
    assert len(list((cache / "digests").glob(f"{entry.name}.corrupt-*"))) == 1 and entry.exists()  # rewritten
