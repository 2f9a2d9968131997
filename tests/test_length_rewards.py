"""ECR and CWR on crafted completions: length in reasoning tokens, capped, never paid without an answer or for a
completion that is not well-formed. Token boundaries on a real byte-level BPE: tests/test_bpe_boundaries.py."""

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
        ("<think> </think><answer>B</answer>", 0.0, 0.0),  # blank reasoning: not well-formed
        ("<answer>B</answer><think>the scan is ct</think>", 0.0, 0.0),  # reasoning after the answer
        ("<think>the scan is ct</think><answer>B</answer> e f", 0.0, 0.0),  # text after the answer
        ("<think>the scan is ct</think><answer>B, maybe C</answer>", 0.0, 0.0),  # a hedge commits to nothing
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
    for fraction in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="target_fraction"):
            ExtendedChainReward(word_tokenizer, target_fraction=fraction, completion_budget=20)
    with pytest.raises(ValueError, match="exactly one"):
        ExtendedChainReward(word_tokenizer, 8, target_fraction=0.5, completion_budget=20)


@pytest.mark.parametrize("budget,target", [(20, 12), (512, 307), (1024, 614)])
def test_target_scales_with_the_completion_budget(word_tokenizer, budget, target):
    reward = CorrectnessWeightedLengthReward(word_tokenizer, target_fraction=0.6, completion_budget=budget)
    assert reward.target_length == target


def _reasoning(n_tokens: int, answer: str = "B") -> str:
    return f"<think>{' '.join(['the'] * n_tokens)}</think><answer>{answer}</answer>"


@pytest.mark.parametrize("length_reward", ["ecr", "cwr"])
def test_under_the_paper_overlay_long_reasoning_earns_more(word_tokenizer, length_reward):
    """Built as a run builds them: at the paper's 512-token budget a 300-token reasoning earns more than a
    50-token one, and neither is paid in full (the target is not a handful of tokens)."""
    from medvqa_rl.training.grpo import reward_functions

    from .conftest import compose_config

    cfg = compose_config(["experiment=paper_qwen2vl_2b_pmcvqa", f"length_reward={length_reward}"])
    (reward,) = [f for f in reward_functions(cfg, word_tokenizer) if getattr(f, "__name__", "") == length_reward]
    kwargs = dict(answer_label=["B", "B"], options=[OPTIONS, OPTIONS])
    short, long = reward(completions=[_reasoning(50), _reasoning(300)], **kwargs)
    assert long > short and long < 1.0 and short < 0.2
    # The embedded budget (20 tokens) asks for short reasoning: 12 tokens are paid in full.
    embedded = compose_config([f"length_reward={length_reward}"])
    (reward,) = [f for f in reward_functions(embedded, word_tokenizer) if getattr(f, "__name__", "") == length_reward]
    assert reward(completions=[_reasoning(12)], answer_label=["B"], options=[OPTIONS]) == [1.0]


def test_ecr_without_the_answer_gate_pays_length_alone(word_tokenizer):
    """require_answer=false is the paper's plain length reward: the reasoning of a well-formed completion is paid
    whether or not its answer names an option; a completion that is not well-formed has no reasoning to pay."""
    completions = ["<think>the scan is ct</think><answer>I think B</answer>", "<think>the scan</think><answer>E</answer>",
                   _reasoning(4), "<think>the scan is ct</think>", "<think>the scan</think><answer></answer>"]
    kwargs = dict(completions=completions, options=[OPTIONS] * 5)
    assert ExtendedChainReward(word_tokenizer, TARGET)(**kwargs) == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert ExtendedChainReward(word_tokenizer, TARGET, require_answer=False)(**kwargs) == [1.0, 0.5, 1.0, 0.0, 0.0]


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
