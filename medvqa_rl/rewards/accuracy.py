"""Accuracy reward: is the completion's answer right? A closed question by its option letter, an open one
(no options) by normalised exact match of the answer text (medvqa_rl/rewards/correctness.py)."""

from __future__ import annotations

from typing import Any

from medvqa_rl.rewards.correctness import is_correct, score_completions


class AccuracyReward:
    """TRL reward function; returns 1.0 per completion whose answer is correct, else 0.0.

    TRL logs it as `rewards/accuracy/mean`. Stateless so it pickles for multiprocessing. answer_text is
    needed only for open questions (TRL passes every dataset column).
    """

    __name__ = "accuracy"

    def __call__(
        self,
        completions: list[Any],
        answer_label: list[str],
        options: list[list[str]],
        answer_text: list[str] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        return score_completions(is_correct, completions, answer_label, options, answer_text)
