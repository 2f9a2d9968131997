"""The semantic judges (rule, hf, openai), their cache and failure policy, and the reward built on them."""

from __future__ import annotations

import json
import time

import pytest
import torch

from medvqa_rl.judges import HFJudge, Judge, JudgeError, JudgeItem, OpenAIJudge, RuleJudge
from medvqa_rl.rewards import SemanticAlignmentReward

from .helpers.fake_chat_server import FakeChatServer

FINDINGS = json.dumps({"modality": "ct", "location": "left upper", "count": 2, "size": "very large"})


def _item(reasoning: str, reference: str = "left upper", findings: str = FINDINGS) -> JudgeItem:
    return JudgeItem("Where are the lesions located?", reference, reasoning, findings)


# ------------------------------------------------------------------ rule --

@pytest.mark.parametrize(
    "reasoning,reference,verdict",
    [
        ("the lesions are at left upper", "left upper", 1.0),
        ("ct scan. 2 very large lesions in the left upper region.", "left upper", 1.0),  # a full report
        ("the lesions are at right upper", "left upper", 0.0),  # wrong finding
        ("the scan is ct", "left upper", 0.0),  # true, but does not address the question
        ("the lesions are at left upper, 3 of them", "left upper", 0.0),  # a contradicted extra finding
        ("left upper or right lower", "left upper", 0.0),  # hedging over two locations
        ("the lesions are large", "very large", 0.0),  # "large" is not "very large"
        ("the lesions are very large", "very large", 1.0),
        ("the lesion count is two", "2", 1.0),  # number words count
        ("the scan is CT", "ct", 1.0),  # case
        ("i cannot tell", "left upper", 0.0),
    ],
)
def test_rule_judge_checks_stated_findings_against_the_image(reasoning, reference, verdict):
    assert RuleJudge()([_item(reasoning, reference)]) == [verdict]


def test_rule_judge_needs_ground_truth():
    with pytest.raises(JudgeError, match="judge=rule"):
        RuleJudge()([_item("left upper", findings="")])


# ------------------------------------------------------- cache, failures --

class CountingJudge(Judge):
    """Says yes to reasoning containing "ok"; fails on reasoning containing "boom"."""

    def __init__(self, on_failure="error"):
        super().__init__(on_failure)
        self.seen = []

    def _judge(self, items):
        self.seen += items
        return [RuntimeError("backend down") if "boom" in i.reasoning else float("ok" in i.reasoning) for i in items]


def test_verdicts_are_cached_per_item():
    judge = CountingJudge()
    items = [_item("ok"), _item("ok"), _item("bad"), _item("ok")]
    assert judge(items) == [1.0, 1.0, 0.0, 1.0]
    assert judge(items[:2]) == [1.0, 1.0]
    assert judge.seen == [_item("ok"), _item("bad")]  # each distinct item asked once
    assert judge.requests == 2


def test_a_failed_verdict_stops_the_run_by_default():
    with pytest.raises(JudgeError, match="backend down.*judge.on_failure=zero"):
        CountingJudge()([_item("ok"), _item("boom")])


def test_on_failure_zero_scores_zero_and_counts():
    judge = CountingJudge(on_failure="zero")
    assert judge([_item("ok"), _item("boom"), _item("boom")]) == [1.0, 0.0, 0.0]
    assert judge.failures == 1  # one distinct item failed
    judge([_item("boom")])
    assert judge.failures == 2  # failures are not cached: the next step asks again


def test_semantic_reward_judges_reasoning_only_and_logs_failures():
    judge = CountingJudge(on_failure="zero")
    logged = {}
    completions = ["<think>ok</think><answer>A</answer>", "<answer>A</answer>", "<think>boom</think><answer>A</answer>",
                   "<think>bad</think><answer>A</answer>", "<think></think><answer>A</answer>"]
    n = len(completions)
    rewards = SemanticAlignmentReward(judge)(
        completions=[[{"role": "assistant", "content": c}] for c in completions], question=["q"] * n,
        answer_text=["left upper"] * n, findings=[FINDINGS] * n, log_metric=lambda k, v: logged.__setitem__(k, v))
    assert rewards == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert [i.reasoning for i in judge.seen] == ["ok", "boom", "bad"]  # no reasoning: no request
    assert logged == {"judge/failures": 1.0, "judge/requests": 3.0}
    assert SemanticAlignmentReward(judge).__name__ == "semantic"  # the name TRL logs it under


# -------------------------------------------------------------------- hf --

TEMPLATE = "question {question} reference {reference} reasoning {reasoning} consistent ?"


def _constant_judge(path, answer: str, **kwargs) -> HFJudge:
    """Final layer norm output fixed to +-(e_Yes - e_No): the tied head then prefers one word on every input."""
    judge = HFJudge(str(path), TEMPLATE, yes_token="Yes", no_token="No", **kwargs)
    transformer = judge.model.transformer
    direction = transformer.wte.weight[judge.yes_id] - transformer.wte.weight[judge.no_id]
    with torch.no_grad():
        transformer.ln_f.weight.zero_()
        transformer.ln_f.bias.copy_(direction if answer == "Yes" else -direction)
    return judge


ITEMS = [_item("the lesions are at left upper"), _item("scan is ct"), _item("the lesions are at right lower upper left")]


@pytest.mark.parametrize("verdict", ["logprob", "generate"])
@pytest.mark.parametrize("answer,expected", [("Yes", 1.0), ("No", 0.0)])
def test_hf_judge_reads_the_models_yes_or_no(tiny_lm_dir, verdict, answer, expected):
    judge = _constant_judge(tiny_lm_dir, answer, verdict=verdict, batch_size=2)
    assert judge(ITEMS) == [expected] * len(ITEMS)


def test_hf_judge_batched_equals_one_by_one(tiny_lm_dir):
    """Left padding must not change a prompt's verdict: compare the Yes-No margins directly."""
    batched = HFJudge(str(tiny_lm_dir), TEMPLATE, yes_token="Yes", no_token="No", batch_size=8)
    single = HFJudge(str(tiny_lm_dir), TEMPLATE, yes_token="Yes", no_token="No", batch_size=1)
    torch.testing.assert_close(batched.margins(ITEMS), single.margins(ITEMS), atol=1e-5, rtol=1e-4)
    assert batched(ITEMS) == single(ITEMS)


def test_hf_judge_rejects_ambiguous_verdict_tokens(tiny_lm_dir):
    with pytest.raises(JudgeError, match="yes_token"):
        HFJudge(str(tiny_lm_dir), TEMPLATE, yes_token="Yes", no_token="Yes")


# ---------------------------------------------------------------- openai --

@pytest.fixture
def chat_server(monkeypatch):
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("MEDVQA_TEST_JUDGE_KEY", "sk-secret-sentinel-123")
    server = FakeChatServer()
    yield server
    server.close()


def _openai_judge(server, **kwargs) -> OpenAIJudge:
    kwargs = {"timeout": 5.0, "max_retries": 0, "api_key_env": "MEDVQA_TEST_JUDGE_KEY", **kwargs}
    return OpenAIJudge(server.url, "judge-model", TEMPLATE, **kwargs)


def test_openai_judge_concurrent_verdicts_with_the_key_from_env(chat_server):
    judge = _openai_judge(chat_server, concurrency=4)
    items = ITEMS + [_item(f"left upper {i}") for i in range(5)]
    assert judge(items) == [1.0, 0.0, 0.0] + [1.0] * 5
    assert chat_server.requests == len(items)
    assert chat_server.auth == {"Bearer sk-secret-sentinel-123"}
    assert "sk-secret" not in repr(judge)
    judge(items)
    assert chat_server.requests == len(items)  # second pass: all cached


def test_openai_judge_failing_server_retries_then_stops(chat_server):
    chat_server.mode = "fail"
    with pytest.raises(JudgeError, match="on_failure=zero"):
        _openai_judge(chat_server, max_retries=1)([ITEMS[0]])
    assert chat_server.requests == 2  # the first try and one retry


def test_openai_judge_failing_server_scores_zero_when_asked(chat_server):
    chat_server.mode = "fail"
    judge = _openai_judge(chat_server, on_failure="zero")
    assert judge(ITEMS) == [0.0, 0.0, 0.0]
    assert judge.failures == 3


def test_openai_judge_timeout(chat_server):
    chat_server.mode = "slow"
    started = time.time()
    with pytest.raises(JudgeError, match="Timeout"):
        _openai_judge(chat_server, timeout=0.2)([ITEMS[0]])
    assert time.time() - started < 1.0  # gave up at the timeout, not after the server's answer


def test_openai_judge_needs_its_key_variable(monkeypatch):
    monkeypatch.delenv("MEDVQA_TEST_UNSET_KEY", raising=False)
    with pytest.raises(JudgeError, match="MEDVQA_TEST_UNSET_KEY"):
        OpenAIJudge("http://127.0.0.1:9/v1", "m", TEMPLATE, api_key_env="MEDVQA_TEST_UNSET_KEY")


# ---------------------------------------------------------------- config --

@pytest.mark.parametrize("backend,cls", [("rule", RuleJudge), ("hf", HFJudge), ("openai", OpenAIJudge)])
def test_each_judge_config_builds_its_back_end(backend, cls, tiny_lm_dir, monkeypatch):
    """The yaml's keys are the class's arguments: a typo in either fails here, not in a user's sweep."""
    from hydra.utils import instantiate

    from .conftest import compose_config

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    overrides = ["reward=semantic", f"judge={backend}"] + ([f"judge.model={tiny_lm_dir}"] if backend == "hf" else [])
    cfg = compose_config(overrides)
    judge = instantiate(cfg.judge)
    assert isinstance(judge, cls) and judge.backend == backend
    reward = instantiate(cfg.reward.functions.semantic)
    assert isinstance(reward.judge, cls)


def test_the_evaluation_judge_is_separate_when_one_is_set():
    """eval_judge=<name> scores the evaluation with its own judge, not the one the semantic reward trained
    against; unset, the reward's judge (or the judge group's) scores, and metrics.json says which."""
    from medvqa_rl.judges.selection import evaluation_judge, evaluation_judge_name

    from .conftest import compose_config

    reward_judge = RuleJudge()
    rewards = [SemanticAlignmentReward(reward_judge)]
    semantic = compose_config(["reward=semantic"])
    assert evaluation_judge(semantic, rewards) is reward_judge
    assert evaluation_judge_name(semantic) == "rule (reward judge)"
    separate = compose_config(["reward=semantic", "eval_judge=rule"])
    judge = evaluation_judge(separate, rewards)
    assert isinstance(judge, RuleJudge) and judge is not reward_judge
    assert evaluation_judge_name(separate) == "rule"
    hf = compose_config(["reward=semantic", "eval_judge=hf", "eval.judge.model=/judges/other"])
    assert evaluation_judge_name(hf) == "hf:/judges/other"
    assert evaluation_judge_name(compose_config([])) == "rule"
    off = compose_config(["reward=semantic", "eval_judge=rule", "eval.judge_score=false"])
    assert evaluation_judge(off, rewards) is None and evaluation_judge_name(off) is None
