"""Tests for completion parsing and the accuracy/format GRPO rewards."""

from __future__ import annotations

import copy
import pickle

import pytest
from trl.trainer.utils import get_callable_name

from medvqa_rl.rewards import (
    AccuracyReward,
    FormatReward,
    answer_letter,
    completion_text,
    is_well_formed,
    reasoning_text,
    well_formed,
    well_formed_reasoning,
)

OPTIONS = ["x-ray", "ct", "mri", "ultrasound"]
LABEL = "B"
GOOD = "<think>Axial slices with bone windows.</think><answer>B</answer>"

# (name, completion, expected accuracy for label B, expected format). Only a well-formed completion (one
# non-empty <think> block, then one non-empty <answer> block, nothing but whitespace around them) has an
# answer, so accuracy is never 1 where format is 0 (rewards/correctness.py says why).
CASES = [
    ("correct", GOOD, 1.0, 1.0),
    ("wrong_letter", "<think>r</think><answer>C</answer>", 0.0, 1.0),
    ("empty_answer", "<think>r</think><answer></answer>", 0.0, 0.0),
    ("missing_answer", "<think>r</think>", 0.0, 0.0),
    ("unclosed_answer", "<think>r</think><answer>B", 0.0, 0.0),
    ("missing_think", "<answer>B</answer>", 0.0, 0.0),
    ("unclosed_think", "<think>r<answer>B</answer>", 0.0, 0.0),
    ("nested_think", "<think><think>r</think></think><answer>B</answer>", 0.0, 0.0),
    ("nested_answer", "<think>r</think><answer><answer>B</answer></answer>", 0.0, 0.0),
    ("two_answers", "<think>r</think><answer>B</answer><answer>C</answer>", 0.0, 0.0),
    ("two_same_answers", "<think>r</think><answer>B</answer><answer>B</answer>", 0.0, 0.0),
    ("two_thinks", "<think>r</think><think>s</think><answer>B</answer>", 0.0, 0.0),
    ("text_after_answer", GOOD + " I hope this helps.", 0.0, 0.0),
    ("trailing_correction", GOOD + " Actually the answer is C", 0.0, 0.0),
    ("reasoning_after_answer", "<answer>B</answer><think>Axial slices with bone windows.</think>", 0.0, 0.0),
    ("text_before_think", "Sure! " + GOOD, 0.0, 0.0),
    ("text_between_blocks", "<think>r</think> so <answer>B</answer>", 0.0, 0.0),
    ("uppercase_tags", "<THINK>r</THINK><ANSWER>B</ANSWER>", 0.0, 0.0),
    ("whitespace_blocks", "<think> </think><answer> </answer>", 0.0, 0.0),
    ("whitespace_think", "<think>\n\t </think><answer>B</answer>", 0.0, 0.0),
    ("empty_think", "<think></think><answer>B</answer>", 0.0, 0.0),
    ("lowercase_letter", "<think>r</think><answer>b</answer>", 1.0, 1.0),
    ("option_text", "<think>r</think><answer>CT</answer>", 1.0, 1.0),
    ("option_text_period", "<think>r</think><answer> ct. </answer>", 1.0, 1.0),
    ("wrong_option_text", "<think>r</think><answer>mri</answer>", 0.0, 1.0),
    ("letter_period", "<think>r</think><answer>B.</answer>", 1.0, 1.0),
    ("letter_parens", "<think>r</think><answer>(B)</answer>", 1.0, 1.0),
    ("letter_close_paren", "<think>r</think><answer>B)</answer>", 1.0, 1.0),
    ("letter_colon_text", "<think>r</think><answer>B: ct</answer>", 1.0, 1.0),
    ("letter_commentary", "<think>r</think><answer>B: the lesion is hyperintense</answer>", 1.0, 1.0),
    ("lead_in", "<think>r</think><answer>The answer is (B) CT.</answer>", 1.0, 1.0),
    # Hedges name a second option inside a well-formed answer: format yes, answer no.
    ("hedge_maybe", "<think>r</think><answer>B, maybe C</answer>", 0.0, 1.0),
    ("hedge_or", "<think>r</think><answer>B: or C</answer>", 0.0, 1.0),
    ("hedge_parenthesised", "<think>r</think><answer>B (or C)</answer>", 0.0, 1.0),
    ("hedge_option_texts", "<think>r</think><answer>B: CT or MRI</answer>", 0.0, 1.0),
    ("self_correction", "<think>r</think><answer>B. Actually C</answer>", 0.0, 1.0),
    ("letter_out_of_range", "<think>r</think><answer>E</answer>", 0.0, 1.0),
    ("free_text_answer", "<think>r</think><answer>I think B</answer>", 0.0, 1.0),
    ("unicode_reasoning", "<think>größer 5 mm → lésion</think><answer>B</answer>", 1.0, 1.0),
    ("whitespace_between", "\n <think>\nl1\nl2\n</think>\n\n<answer> B </answer>\n", 1.0, 1.0),
]
IDS = [case[0] for case in CASES]
PARTS_T = [{"type": "text", "text": "t"}]


def _conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _conversational_parts(text: str) -> list[dict]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


class TestCompletionParsing:
    @pytest.mark.parametrize(
        ("completion", "expected"),
        [
            ("plain", "plain"),
            (_conversational("msg"), "msg"),
            (_conversational_parts("part"), "part"),
            # Non-assistant turns and non-text parts carry no answer text.
            ([{"role": "user", "content": "q"}, *_conversational_parts("t")], "t"),
            ([{"role": "assistant", "content": [{"type": "image"}, *PARTS_T]}], "t"),
        ],
    )
    def test_completion_text(self, completion, expected):
        assert completion_text(completion) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (GOOD, "Axial slices with bone windows."),
            ("<think>\n größer → lésion \n</think><answer>B</answer>", "größer → lésion"),
            ("<answer>B</answer>", None),
            ("<think>unclosed<answer>B</answer>", None),
            ("<think>a</think><think>b</think><answer>B</answer>", None),
        ],
    )
    def test_reasoning_text(self, text, expected):
        assert reasoning_text(text) == expected

    @pytest.mark.parametrize(
        ("content", "options", "expected"),
        [
            ("A", OPTIONS, "A"),
            ("d", OPTIONS, "D"),
            ("(c)", OPTIONS, "C"),
            ("Ultrasound.", OPTIONS, "D"),
            ("", OPTIONS, None),
            ("   ", OPTIONS, None),
            ("D", ["yes", "no", "maybe"], None),  # letter beyond the number of options
            ("AB", OPTIONS, None),
            ("same", ["same", "same", "other", "x"], None),  # ambiguous option text
        ],
    )
    def test_answer_letter(self, content, options, expected):
        assert answer_letter(f"<think>r</think><answer>{content}</answer>", options) == expected

    @pytest.mark.parametrize(("name", "text", "accuracy", "fmt"), CASES, ids=IDS)
    def test_is_well_formed(self, name, text, accuracy, fmt):
        assert is_well_formed(text) is bool(fmt)
        assert accuracy <= fmt  # an answer only where the format holds

    def test_well_formed_parts_and_spans(self):
        text = "\n <think>\n größer → lésion \n</think>\n<answer> (B) CT </answer>\n"
        parts = well_formed(text)
        assert (parts.reasoning, parts.answer) == ("größer → lésion", "(B) CT")
        assert text[slice(*parts.reasoning_span)] == parts.reasoning
        assert text[slice(*parts.answer_span)] == parts.answer
        assert well_formed_reasoning(text) == "größer → lésion"
        # The block readers still read a block wherever it stands; the scores do not.
        reversed_order = "<answer>B</answer><think>r</think>"
        assert reasoning_text(reversed_order) == "r" and well_formed_reasoning(reversed_order) is None


class TestAccuracyReward:
    @pytest.mark.parametrize(("name", "text", "expected", "fmt"), CASES, ids=IDS)
    @pytest.mark.parametrize("wrap", [str, _conversational, _conversational_parts])
    def test_cases(self, name, text, expected, fmt, wrap):
        reward = AccuracyReward()
        rewards = reward(completions=[wrap(text)], answer_label=[LABEL], options=[OPTIONS])
        assert rewards == [expected]

    def test_batch_and_trl_kwargs(self):
        texts = [GOOD, "<think>r</think><answer>A</answer>", "garbage"]
        rewards = AccuracyReward()(
            prompts=["p"] * 3,
            completions=texts,
            completion_ids=[[1]] * 3,
            trainer_state=None,
            answer_label=["B", "A", "B"],
            options=[OPTIONS] * 3,
            question_type=["modality"] * 3,
            rationale=[""] * 3,
            findings=[""] * 3,
        )
        assert rewards == [1.0, 1.0, 0.0]
        assert all(isinstance(r, float) for r in rewards)

    def test_name(self):
        # TRL names the metric via getattr(instance, "__name__"); the class keeps its own
        # name (type slot), which pickle and Hydra `_target_` resolution depend on.
        assert get_callable_name(AccuracyReward()) == "accuracy"
        assert AccuracyReward.__name__ == "AccuracyReward"

    @pytest.mark.parametrize("roundtrip", [lambda r: pickle.loads(pickle.dumps(r)), copy.deepcopy])
    def test_pickle_and_deepcopy(self, roundtrip):
        reward = roundtrip(AccuracyReward())
        assert reward.__name__ == "accuracy"
        assert reward(completions=[GOOD], answer_label=[LABEL], options=[OPTIONS]) == [1.0]


class TestFormatReward:
    @pytest.mark.parametrize(("name", "text", "acc", "expected"), CASES, ids=IDS)
    @pytest.mark.parametrize("wrap", [str, _conversational, _conversational_parts])
    def test_cases(self, name, text, acc, expected, wrap):
        assert FormatReward()(completions=[wrap(text)]) == [expected]

    def test_batch_and_trl_kwargs(self):
        texts = [GOOD, "no tags", GOOD + "trailing", GOOD]
        rewards = FormatReward()(
            prompts=["p"] * 4,
            completions=texts,
            completion_ids=[[1]] * 4,
            trainer_state=None,
            answer_label=["B"] * 4,
            options=[OPTIONS] * 4,
        )
        assert rewards == [1.0, 0.0, 0.0, 1.0]
        assert all(isinstance(r, float) for r in rewards)

    def test_name(self):
        # TRL names the metric via getattr(instance, "__name__"); the class keeps its own
        # name (type slot), which pickle and Hydra `_target_` resolution depend on.
        assert get_callable_name(FormatReward()) == "format"
        assert FormatReward.__name__ == "FormatReward"

    @pytest.mark.parametrize("roundtrip", [lambda r: pickle.loads(pickle.dumps(r)), copy.deepcopy])
    def test_pickle_and_deepcopy(self, roundtrip):
        reward = roundtrip(FormatReward())
        assert reward.__name__ == "format"
        assert reward(completions=[GOOD]) == [1.0]
