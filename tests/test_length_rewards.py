"""ECR and CWR on crafted completions: length in reasoning tokens, capped, never paid without an answer."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from medvqa_rl.rewards import CorrectnessWeightedLengthReward, ExtendedChainReward

OPTIONS = ["x-ray", "ct", "mri", "ultrasound"]
TARGET = 4


@pytest.fixture(scope="module")
def word_tokenizer():
    """One token per whitespace-separated word, so a reasoning's token count is its word count."""
    words = "the scan is ct mri x-ray a b c d e f g h".split()
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]"] + words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]")


def _rewards(word_tokenizer, completion: str, label: str = "B") -> dict[str, float]:
    kwargs = dict(completions=[[{"role": "assistant", "content": completion}]], answer_label=[label], options=[OPTIONS])
    return {
        "ecr": ExtendedChainReward(word_tokenizer, TARGET)(**kwargs)[0],
        "cwr": CorrectnessWeightedLengthReward(word_tokenizer, TARGET)(**kwargs)[0],
    }


@pytest.mark.parametrize(
    "completion,ecr,cwr",
    [
        ("<think>the scan</think><answer>B</answer>", 0.5, 0.5),  # 2 of 4 target tokens, correct
        ("<think>the scan is ct</think><answer>B</answer>", 1.0, 1.0),  # at the target
        ("<think>the scan is ct a b c d e f</think><answer>B</answer>", 1.0, 1.0),  # capped at 1
        ("<think>the scan is</think><answer>A</answer>", 0.75, 0.0),  # wrong: ECR pays, CWR does not
        ("<think>the scan is ct</think><answer>ct</answer>", 1.0, 1.0),  # option text instead of the letter
        ("<think>the scan is ct</think><answer></answer>", 0.0, 0.0),  # empty answer
        ("<think>the scan is ct a b c d</think>", 0.0, 0.0),  # missing answer
        ("<think>the scan is ct<answer>B</answer>", 0.0, 0.0),  # unclosed think
        ("<think>the scan is ct</think><answer>B</answer><answer>A</answer>", 0.0, 0.0),  # two answers
        ("<think></think><answer>B</answer>", 0.0, 0.0),  # no reasoning: length 0
        ("<answer>B</answer>", 0.0, 0.0),  # no think block at all
        ("", 0.0, 0.0),
    ],
)
def test_length_rewards_on_crafted_completions(word_tokenizer, completion, ecr, cwr):
    assert _rewards(word_tokenizer, completion) == {"ecr": ecr, "cwr": cwr}


def test_length_counts_reasoning_tokens_not_the_answer(word_tokenizer):
    short = _rewards(word_tokenizer, "<think>the</think><answer>B</answer>")
    padded_answer = _rewards(word_tokenizer, "<think>the</think><answer>B: ct scan is the answer</answer>")
    assert short == padded_answer == {"ecr": 0.25, "cwr": 0.25}


def test_names_and_target_validation(word_tokenizer):
    assert ExtendedChainReward(word_tokenizer, 8).__name__ == "ecr"
    assert CorrectnessWeightedLengthReward(word_tokenizer, 8).__name__ == "cwr"
    with pytest.raises(ValueError, match="target_length"):
        ExtendedChainReward(word_tokenizer, 0)


@pytest.mark.parametrize(
    "completion,ecr,cwr",
    [
        ("<think>the scan is ct</think><answer>The left lung.</answer>", 1.0, 1.0),  # exact after normalisation
        ("<think>the scan</think><answer>left lower lung</answer>", 0.5, 0.0),  # an answer, not the right one
        ("<think>the scan is ct</think><answer> </answer>", 0.0, 0.0),  # empty answer
        ("<think>the scan is ct</think>", 0.0, 0.0),  # missing answer
    ],
)
def test_open_questions(word_tokenizer, completion, ecr, cwr):
    # An open question (no options): ECR pays for any non-empty answer, CWR for one matching answer_text.
    kwargs = dict(completions=[completion], answer_label=[""], options=[[]], answer_text=["left lung"])
    assert ExtendedChainReward(word_tokenizer, TARGET)(**kwargs) == [ecr]
    assert CorrectnessWeightedLengthReward(word_tokenizer, TARGET)(**kwargs) == [cwr]
