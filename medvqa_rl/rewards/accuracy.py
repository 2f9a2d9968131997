"""Accuracy reward: did the completion commit to the gold option letter?"""

from __future__ import annotations

from typing import Any

from medvqa_rl.rewards.completion_parsing import answer_letter, completion_text


class AccuracyReward:
    """TRL reward function; returns 1.0 per completion whose answer matches the label, else 0.0.

    TRL logs it as `rewards/accuracy/mean`. Stateless so it pickles for multiprocessing.
    """

    __name__ = "accuracy"

    def __call__(
        self,
        completions: list[Any],
        answer_label: list[str],
        options: list[list[str]],
        **kwargs: Any,
    ) -> list[float]:
        return [
            1.0 if answer_letter(completion_text(c), opts) == label.strip().upper() else 0.0
            for c, label, opts in zip(completions, answer_label, options, strict=True)
        ]
