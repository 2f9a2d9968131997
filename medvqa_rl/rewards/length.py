"""Length rewards of the paper's study, measured in tokens of the <think> reasoning.

With L the number of reasoning tokens (policy tokenizer, no special tokens; 0 when there is no single
<think> block) and T = target_length:

- ECR (Extended Chain Reward):        r = min(L / T, 1)  if the completion commits to an answer, else 0
- CWR (Correctness-Weighted Reward):  r = min(L / T, 1)  if that answer is correct,               else 0

A closed question's answer is an option letter; an open question's (no options) is the non-empty
<answer> text, correct by normalised exact match (medvqa_rl/rewards/correctness.py).

Both are 0 for an empty or missing answer, so length alone earns nothing; CWR pays for length only on
correct answers. The cap at T stops a reward for rambling into the completion budget. The term's
weight is length_reward.weights.<name> (TRL's reward_weights).
"""

from __future__ import annotations

from typing import Any

from medvqa_rl.rewards.completion_parsing import completion_text, reasoning_text
from medvqa_rl.rewards.correctness import is_correct, parsed_answer, score_completions


class _ReasoningLengthReward:
    def __init__(self, tokenizer, target_length: int) -> None:
        if target_length <= 0:
            raise ValueError(f"length_reward target_length must be positive, got {target_length}")
        self.tokenizer, self.target_length = tokenizer, target_length

    def reasoning_tokens(self, text: str) -> int:
        reasoning = reasoning_text(text)
        return len(self.tokenizer(reasoning, add_special_tokens=False).input_ids) if reasoning else 0

    def _scaled(self, text: str) -> float:
        return min(self.reasoning_tokens(text) / self.target_length, 1.0)


class ExtendedChainReward(_ReasoningLengthReward):
    """ECR: min(L/T, 1) whenever the completion commits to an answer (an option, or open text), else 0."""

    __name__ = "ecr"

    def __call__(self, completions: list[Any], options: list[list[str]], **kwargs: Any) -> list[float]:
        texts = [completion_text(c) for c in completions]
        return [self._scaled(t) if parsed_answer(t, opts) else 0.0 for t, opts in zip(texts, options, strict=True)]


class CorrectnessWeightedLengthReward(_ReasoningLengthReward):
    """CWR: min(L/T, 1) when the answer is correct, else 0."""

    __name__ = "cwr"

    def __call__(self, completions: list[Any], answer_label: list[str], options: list[list[str]],
                 answer_text: list[str] | None = None, **kwargs: Any) -> list[float]:
        def score(text, opts, label, reference):
            return self._scaled(text) if is_correct(text, opts, label, reference) else 0.0

        return score_completions(score, completions, answer_label, options, answer_text)
