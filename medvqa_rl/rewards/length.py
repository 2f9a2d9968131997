"""Length rewards of the paper's study, measured in tokens of the <think> reasoning.

With L the number of reasoning tokens and T the target length in tokens:

- ECR (Extended Chain Reward):        r = min(L / T, 1)  if the completion commits to an answer, else 0
- CWR (Correctness-Weighted Reward):  r = min(L / T, 1)  if that answer is correct,               else 0

T scales with the completion budget: the configs give target_fraction, and T = round(target_fraction x
method.max_completion_length) (12 of the embedded 20 tokens at 0.6, 307 of the paper's 512), so the same
config asks for long reasoning at real scale and short at the embedded one. A fixed T (target_length, tokens)
is possible too.

L counts the tokens of the completion's own tokenization (policy tokenizer, offset mapping: token_spans.py)
that hold characters of the reasoning of a well-formed completion (completion_parsing.well_formed); a
completion that is not well-formed has L = 0, so reasoning written after the answer, or beside a second
answer, is never paid.

A closed question's answer is an option letter; an open question's (no options) is the non-empty
<answer> text, correct by normalised exact match (medvqa_rl/rewards/correctness.py).

ECR's gate on a committed answer is our choice (require_answer=true): the paper's ECR "directly rewards long
outputs", which require_answer=false reproduces (any well-formed completion's reasoning length is paid, whether
its answer names an option or not). With the gate, length alone earns nothing. CWR pays for length only on correct answers. The cap at T stops a reward for
rambling into the completion budget. The term's weight is length_reward.weights.<name> (TRL's reward_weights).
"""

from __future__ import annotations

from typing import Any

from medvqa_rl.reasoning_formats import DEFAULT, reasoning_format
from medvqa_rl.rewards.completion_parsing import completion_text, well_formed
from medvqa_rl.rewards.correctness import is_correct, parsed_answer, score_completions
from medvqa_rl.rewards.token_spans import tokens_overlapping


def target_tokens(target_length: int | None, target_fraction: float | None, completion_budget: int | None) -> int:
    """T in tokens: target_length as given, or round(target_fraction x completion_budget), at least 1."""
    if (target_length is None) == (target_fraction is None):
        raise ValueError("a length reward takes exactly one of target_length (tokens) or target_fraction "
                         f"(of the completion budget), got target_length={target_length}, target_fraction={target_fraction}")
    if target_fraction is not None:
        if not 0 < target_fraction <= 1:
            raise ValueError(f"length_reward target_fraction must be in (0, 1] of the completion budget, got {target_fraction}")
        if completion_budget is None:
            raise ValueError("length_reward target_fraction needs the completion budget (method.max_completion_length)")
        return max(1, round(target_fraction * completion_budget))
    if target_length <= 0:
        raise ValueError(f"length_reward target_length must be positive, got {target_length}")
    return target_length


class _ReasoningLengthReward:
    needs_reasoning = True  # config checks refuse it with a format without reasoning (reasoning=none)

    def __init__(self, tokenizer, target_length: int | None = None, *, target_fraction: float | None = None,
                 completion_budget: int | None = None, reasoning: str = DEFAULT) -> None:
        if not reasoning_format(reasoning).has_reasoning:  # config checks refuse it first, naming the keys
            raise ValueError(f"a length reward measures the reasoning; reasoning={reasoning} has none")
        self.tokenizer = tokenizer
        self.target_length = target_tokens(target_length, target_fraction, completion_budget)
        self.reasoning = reasoning

    def reasoning_tokens(self, text: str) -> int:
        """L: tokens of the whole completion's tokenization inside its reasoning; 0 unless well-formed in the
        reasoning format (after: the explanation that follows the answer)."""
        parts = well_formed(text, self.reasoning)
        return 0 if parts is None else tokens_overlapping(self.tokenizer, text, *parts.reasoning_span)

    def _scaled(self, text: str) -> float:
        return min(self.reasoning_tokens(text) / self.target_length, 1.0)


class ExtendedChainReward(_ReasoningLengthReward):
    """ECR: min(L/T, 1) whenever the completion commits to an answer (an option, or open text), else 0;
    with require_answer=False, min(L/T, 1) for every completion (the paper's "directly rewards long outputs")."""

    __name__ = "ecr"

    def __init__(self, tokenizer, target_length: int | None = None, *, target_fraction: float | None = None,
                 completion_budget: int | None = None, require_answer: bool = True, reasoning: str = DEFAULT) -> None:
        super().__init__(tokenizer, target_length, target_fraction=target_fraction, completion_budget=completion_budget,
                         reasoning=reasoning)
        self.require_answer = require_answer

    def __call__(self, completions: list[Any], options: list[list[str]], **kwargs: Any) -> list[float]:
        texts = [completion_text(c) for c in completions]
        return [self._scaled(t) if not self.require_answer or parsed_answer(t, opts, self.reasoning) else 0.0
                for t, opts in zip(texts, options, strict=True)]


class CorrectnessWeightedLengthReward(_ReasoningLengthReward):
    """CWR: min(L/T, 1) when the answer is correct, else 0."""

    __name__ = "cwr"

    def __call__(self, completions: list[Any], answer_label: list[str], options: list[list[str]],
                 answer_text: list[str] | None = None, **kwargs: Any) -> list[float]:
        def score(text, opts, label, reference, reasoning):
            return self._scaled(text) if is_correct(text, opts, label, reference, reasoning) else 0.0

        return score_completions(score, completions, answer_label, options, answer_text, self.reasoning)
