"""Token-F1 reward: partial credit for an open answer that shares words with the reference.

Exact match gives a free-text answer 0 for "left lower lobe" against "left lobe"; token F1 (SQuAD's,
medvqa_rl/rewards/open_answer.py) gives 0.8, a denser signal for GRPO. Closed questions have no partial
credit and score as AccuracyReward does, so this reward can replace accuracy on a mixed set
(reward=accuracy_f1).
"""

from __future__ import annotations

from typing import Any

from medvqa_rl.rewards.correctness import answer_f1, score_completions


class OpenAnswerF1Reward:
    """TRL reward function; per completion the token F1 (0-1) of its answer for an open question, 1.0 / 0.0
    for a closed one; 0.0 for a missing, unclosed, repeated or empty <answer> block.

    TRL logs it as `rewards/answer_f1/mean`. Stateless so it pickles for multiprocessing.
    """

    __name__ = "answer_f1"

    def __call__(
        self,
        completions: list[Any],
        answer_label: list[str],
        options: list[list[str]],
        answer_text: list[str] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        return score_completions(answer_f1, completions, answer_label, options, answer_text)
