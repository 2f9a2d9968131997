"""Accuracy reward: is the completion's answer right? A closed question by its option letter, an open one
(no options) by normalised exact match of the answer text (medvqa_rl/rewards/correctness.py)."""

from __future__ import annotations

from medvqa_rl.rewards.correctness import AnswerReward, is_correct


class AccuracyReward(AnswerReward):
    """TRL reward function; returns 1.0 per completion whose answer is correct, else 0.0.

    TRL logs it as `rewards/accuracy/mean`. answer_text is needed only for open questions (TRL passes
    every dataset column).
    """

    __name__ = "accuracy"
    score = staticmethod(is_correct)
