"""Bad input never raises: unclosed, nested or repeated tags, undecodable bytes, 10,000 characters, only tags,
odd message shapes. Every reward returns a number for each completion (0 for one that is not well-formed),
every scoring parser None, and a well-formed completion with odd content (a lone surrogate, a 10,000-character
reasoning) still scores."""

from __future__ import annotations

import json
import math
import time

import pytest
from transformers import AutoTokenizer

from medvqa_rl.judges import RuleJudge
from medvqa_rl.models.shipped_tiny import SHIPPED_DIR
from medvqa_rl.rewards import (
    AccuracyReward,
    CorrectnessWeightedLengthReward,
    ExtendedChainReward,
    FormatReward,
    OpenAnswerF1Reward,
    SemanticAlignmentReward,
    answer_content,
    answer_letter,
    completion_text,
    parsed_answer,
    reasoning_text,
    well_formed,
    well_formed_reasoning,
)
from medvqa_rl.rewards.option_letter import letter_of

OPTIONS = ["X-ray", "MRI", "CT", "Ultrasound"]
FINDINGS = json.dumps({"modality": "mri", "location": "left upper", "size": "small", "count": 2})
UNDECODABLE = b"\xff\xfe\x80".decode("utf-8", "surrogateescape")  # as os/subprocess hand over bad bytes

NOT_WELL_FORMED = [
    "<think>r</think><answer>B",  # unclosed answer
    "<think>r<answer>B</answer>",  # unclosed think
    "<think>r</think><answer>B</answer",  # a broken closing tag
    "<think><think>r</think></think><answer>B</answer>",  # nested
    "<think>r</think><answer><answer>B</answer></answer>",
    "<think>r<answer>B</answer></think>",
    "<think>r</think><answer>B</answer><answer>C</answer>",  # repeated
    "<think>r</think><think>s</think><answer>B</answer>",
    "<think>r</think><answer>B</answer>" * 2,
    UNDECODABLE + "<think>r</think><answer>B</answer>",  # undecodable bytes outside the blocks
    b"\xff<think>r</think><answer>B</answer>",  # bytes, not text
    "B" * 10_000,  # 10,000 characters
    "<think>" + "the lesion " * 1_000,  # 10,000 characters, unclosed
    "<think>r</think><answer>" + "<answer>" * 1_250,
    "<think></think><answer></answer>",  # only tags
    "</answer></think><answer><think>",
    "<think><answer></think></answer>",
    "<think></think>",
    "<answer></answer>",
    "<think>\u200b\u00a0\t</think><answer>\n</answer>",  # blank, in several kinds of whitespace
    "",
    None,
    42,
    [{"role": "assistant"}],  # a message without content
    [{"role": "assistant", "content": [{"type": "text"}, "x", None]}],  # parts without text
    ["not a message"],
]
# Well-formed, with odd content: they score like any well-formed completion.
ODD_BUT_WELL_FORMED = [
    f"<think>{UNDECODABLE} the scan is mri</think><answer>B</answer>",
    "<think>" + "the scan is mri " * 625 + "</think><answer>B</answer>",  # a 10,000-character reasoning
    "<think>x</think><answer>" + "B: the lesion is hyperintense " * 300 + "</answer>",
]


@pytest.fixture(scope="module")
def rewards():
    tokenizer = AutoTokenizer.from_pretrained(SHIPPED_DIR / "instruct")
    return [AccuracyReward(), FormatReward(), OpenAnswerF1Reward(), ExtendedChainReward(tokenizer, 12),
            ExtendedChainReward(tokenizer, 12, require_answer=False), CorrectnessWeightedLengthReward(tokenizer, 12),
            SemanticAlignmentReward(RuleJudge())]


def _columns(n: int, options: list[str]) -> dict:
    return dict(answer_label=["B" if options else ""] * n, options=[options] * n, answer_text=["MRI"] * n,
                question=["Which modality?"] * n, findings=[FINDINGS] * n)


@pytest.mark.parametrize("options", [OPTIONS, []], ids=["closed", "open"])
def test_every_reward_returns_a_number_for_every_completion(rewards, options):
    completions = NOT_WELL_FORMED + ODD_BUT_WELL_FORMED
    started = time.perf_counter()
    for reward in rewards:
        values = reward(completions=completions, **_columns(len(completions), options))
        assert len(values) == len(completions), reward.__name__
        assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), reward.__name__
        assert values[: len(NOT_WELL_FORMED)] == [0.0] * len(NOT_WELL_FORMED), reward.__name__
    assert time.perf_counter() - started < 30  # linear in the text: no regex backtracking on 10,000 characters


@pytest.mark.parametrize("completion", NOT_WELL_FORMED, ids=range(len(NOT_WELL_FORMED)))
def test_every_parser_returns_none(completion):
    text = completion_text(completion)
    assert isinstance(text, str)
    assert well_formed(text) is None and well_formed_reasoning(text) is None
    assert parsed_answer(text, OPTIONS) is None and parsed_answer(text, []) is None
    # The single-block readers read one block wherever it stands (a closed <think> before an unclosed <answer>
    # still reads); no score uses them alone. They never raise either.
    for value in (answer_letter(text, OPTIONS), answer_content(text), reasoning_text(text)):
        assert value is None or isinstance(value, str)


def test_odd_but_well_formed_completions_score(rewards):
    ecr = rewards[3]
    scores = [ecr(completions=[c], **_columns(1, OPTIONS))[0] for c in ODD_BUT_WELL_FORMED]
    assert scores == [pytest.approx(min(ecr.reasoning_tokens(c) / 12, 1.0)) for c in ODD_BUT_WELL_FORMED]
    assert scores[1] == 1.0  # a 10,000-character reasoning is capped at the target
    assert letter_of("B: the lesion is hyperintense " * 300, OPTIONS) == "B"
    assert letter_of(UNDECODABLE, OPTIONS) is None and letter_of(None, OPTIONS) is None
