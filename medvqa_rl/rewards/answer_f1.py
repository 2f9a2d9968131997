"""Token-F1 reward: partial credit for an open answer that shares words with the reference.

Exact match gives a free-text answer 0 for "left lower lobe" against "left lobe"; token F1 (SQuAD's,
medvqa_rl/rewards/open_answer.py) gives 0.8, a denser signal for GRPO. Closed questions have no partial
credit and score as AccuracyReward does, so this reward can replace accuracy on a mixed set
(reward=accuracy_f1).
"""

from __future__ import annotations

from medvqa_rl.rewards.correctness import AnswerReward, answer_f1


class OpenAnswerF1Reward(AnswerReward):
    """TRL reward function; per completion the token F1 (0-1) of its answer for an open question, 1.0 / 0.0
    for a closed one; 0.0 for a missing, unclosed, repeated or empty <answer> block.

    TRL logs it as `rewards/answer_f1/mean`.
    """

    __name__ = "answer_f1"
    score = staticmethod(answer_f1)
