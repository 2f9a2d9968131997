"""Where the reasoning goes (issue 38): think (the paper's, default), none, after. One layout per format decides
well-formedness; the prompt, the rewards, the SFT/DPO targets and the config checks follow the chosen format; the
default's prompt and rewards are byte-for-byte what they were."""

from __future__ import annotations

import json

import pytest
from hydra.errors import MissingConfigException

from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.prompts import question_text, reference_completion, reference_response
from medvqa_rl.reasoning_formats import FORMATS
from medvqa_rl.rewards import (AccuracyReward, CorrectnessWeightedLengthReward, ExtendedChainReward, FormatReward,
                               OpenAnswerF1Reward, well_formed)
from medvqa_rl.rewards.semantic import judge_items
from medvqa_rl.training.grpo import reward_functions
from medvqa_rl.training.preferences import rejected_completion

from .conftest import ONE_STEP_RUN, SMALL_TINY, cli, compose_config

OPTIONS = ["small", "medium", "large", "very large"]
THINK = "<think>the lesion is large</think><answer>C</answer>"
NONE = "<answer>C</answer>"
AFTER = "<answer>C</answer><think>the lesion is large</think>"
WRONG = {"think": "<think>the lesion is small</think><answer>A</answer>", "none": "<answer>A</answer>",
         "after": "<answer>A</answer><think>the lesion is small</think>"}
RIGHT = {"think": THINK, "none": NONE, "after": AFTER}


class _Tokenizer:
    """Whitespace-and-tag tokens with offsets, enough for the length rewards' counts."""

    def __call__(self, text, add_special_tokens=False, return_offsets_mapping=True):
        import re

        return {"offset_mapping": [m.span() for m in re.finditer(r"</?\w+>|[^\s<]+", text)]}


def _call(reward, *completions):
    n = len(completions)
    return reward(completions=list(completions), answer_label=["C"] * n, options=[OPTIONS] * n,
                  answer_text=["large"] * n)


def test_the_default_prompt_and_target_are_byte_identical_to_the_papers():
    """The shipped tiny models were trained on these exact strings (and their cache is keyed by them)."""
    assert question_text("What size?", ["small", "large"]) == (
        "What size?\nA. small\nB. large\nReason in <think></think>, then give the letter in <answer></answer>.")
    assert question_text("Where?", []) == (
        "Where?\nReason in <think></think>, then give the answer in a few words in <answer></answer>.")
    assert question_text("What size?", ["small"], "think") == question_text("What size?", ["small"])
    assert reference_completion("r", "B") == "<think>r</think><answer>B</answer>"


def test_the_default_rewards_score_as_before():
    """reasoning=think (the default): format and accuracy as the paper's rule has always scored them."""
    cases = [THINK, " <think> x </think>\n<answer> C </answer> ", NONE, AFTER, THINK + " C", "<think></think><answer>C</answer>",
             "<think>a<think>b</think></think><answer>C</answer>", "<think>x</think><answer>C</answer><answer>A</answer>"]
    assert _call(FormatReward(), *cases) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert _call(AccuracyReward(), *cases) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert _call(FormatReward("think"), *cases) == _call(FormatReward(), *cases)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_rewards_only_its_own_layout(fmt):
    others = [RIGHT[f] for f in sorted(FORMATS) if f != fmt]
    assert _call(FormatReward(fmt), RIGHT[fmt], WRONG[fmt], *others) == [1.0, 1.0, 0.0, 0.0]
    assert _call(AccuracyReward(fmt), RIGHT[fmt], WRONG[fmt], *others) == [1.0, 0.0, 0.0, 0.0]
    assert _call(OpenAnswerF1Reward(fmt), RIGHT[fmt], WRONG[fmt], *others) == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("text", ["", "<answer></answer>", "<answer> </answer>", "<answer>C</answer> extra",
                                  "<answer>C</answer><answer>A</answer>", "<answer><answer>C</answer></answer>",
                                  "<answer>C</answer><think></think>", "<answer>C", "<ANSWER>C</ANSWER>"])
def test_none_and_after_refuse_what_the_think_rule_refuses(text):
    assert well_formed(text, "none") is None
    assert well_formed(text, "after") is None


def test_none_has_no_reasoning_and_after_reads_the_explanation():
    assert well_formed(" <answer> C </answer>\n", "none").reasoning is None
    parts = well_formed("<answer>C</answer>\n<think> große Läsion </think>", "after")
    assert (parts.answer, parts.reasoning) == ("C", "große Läsion")
    assert well_formed("<answer>C</answer><think>x</think> then A", "after") is None  # text after the explanation


def test_length_rewards_measure_the_explanation_after_the_answer_and_refuse_none():
    tokenizer = _Tokenizer()
    ecr = ExtendedChainReward(tokenizer, 4, reasoning="after")
    cwr = CorrectnessWeightedLengthReward(tokenizer, 4, reasoning="after")
    # "the lesion is large": 4 tokens, at T = 4 the full reward; the think layout counts nothing under after.
    assert _call(ecr, AFTER, WRONG["after"], THINK) == [1.0, 1.0, 0.0]
    assert _call(cwr, AFTER, WRONG["after"], THINK) == [1.0, 0.0, 0.0]
    assert _call(ExtendedChainReward(tokenizer, 4), THINK, AFTER) == [1.0, 0.0]  # the default as before
    with pytest.raises(ValueError, match="reasoning=none"):
        ExtendedChainReward(tokenizer, 4, reasoning="none")


def test_the_judge_reads_the_formats_reasoning():
    items = judge_items([AFTER, THINK], ["q", "q"], ["large", "large"], reasoning="after")
    assert items[0].reasoning == "the lesion is large" and items[1] is None


def test_supervised_targets_follow_the_format():
    record = {"rationale": "the lesion is large", "answer_label": "C", "answer_text": "large", "options": OPTIONS,
              "question": "What size?", "id": "x", "question_type": "size"}
    assert reference_response(record) == THINK
    assert reference_response(record, "none") == NONE
    assert reference_response(record, "after") == AFTER
    for fmt in FORMATS:  # DPO's rejected turn: the same layout, the wrong finding and letter
        rejected = rejected_completion(record, seed=0, reasoning=fmt)
        assert well_formed(rejected, fmt) is not None and well_formed(rejected, fmt).answer != "C"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_the_composed_rewards_and_prompt_follow_the_group(fmt):
    cfg = compose_config([f"reasoning={fmt}", "length_reward=cwr" if fmt != "none" else "length_reward=none"])
    check_config(cfg)
    rewards = reward_functions(cfg, _Tokenizer())
    assert {reward.reasoning for reward in rewards} == {fmt}
    assert [r.__name__ for r in rewards] == (["accuracy", "format", "cwr"] if fmt != "none" else ["accuracy", "format"])
    assert _call(rewards[1], RIGHT[fmt], *(RIGHT[f] for f in FORMATS if f != fmt)) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("overrides,key", [
    (["reasoning=none", "length_reward=ecr"], "length_reward=ecr"),
    (["reasoning=none", "length_reward=cwr"], "length_reward=cwr"),
    (["reasoning=none", "reward=semantic"], "reward=semantic"),
    (["reasoning.name=later"], "reasoning.name"),
])
def test_a_format_that_cannot_work_is_refused_before_loading(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(compose_config(overrides))


def test_an_unknown_format_is_refused_at_composition():
    with pytest.raises(MissingConfigException, match="reasoning/later"):
        compose_config(["reasoning=later"])


def test_after_keeps_length_rewards_and_the_judge():
    check_config(compose_config(["reasoning=after", "length_reward=ecr", "reward=semantic"]))


@pytest.mark.slow  # two tiny runs end to end
@pytest.mark.parametrize("fmt", ["none", "after"])
def test_a_run_records_its_format_and_scores_in_it(fmt, tiny_cache, tmp_path):
    run_dir = tmp_path / fmt
    result = cli([*SMALL_TINY, *ONE_STEP_RUN, f"reasoning={fmt}", f"cache_dir={tiny_cache}", "eval.progress=false",
                  f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["factor/reasoning"] == fmt
    assert ("test/similarity" in metrics, "test/judge_score" in metrics) == ((True, True) if fmt == "after" else (False, False))
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert all(row["well_formed"] == (well_formed(row["completion"], fmt) is not None) for row in rows)
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert f"reasoning:\n  name: {fmt}" in config
