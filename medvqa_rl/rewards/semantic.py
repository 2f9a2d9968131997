"""Medical semantic alignment reward: a judge says whether the reasoning is clinically consistent."""

from __future__ import annotations

from typing import Any, Callable

from medvqa_rl.judges.base import Judge, JudgeItem
from medvqa_rl.reasoning_formats import DEFAULT
from medvqa_rl.rewards.completion_parsing import completion_text, well_formed_reasoning


def judge_items(completions: list[Any], question: list[str], answer_text: list[str],
                findings: list[str] | None = None, reasoning: str = DEFAULT) -> list[JudgeItem | None]:
    """One judge request per completion; None where there is no reasoning to judge: only a well-formed
    completion has one (completion_parsing.well_formed), as for every other score."""
    findings = findings or [""] * len(completions)
    items = []
    for completion, q, reference, truth in zip(completions, question, answer_text, findings, strict=True):
        stated = well_formed_reasoning(completion_text(completion), reasoning)
        items.append(JudgeItem(q, reference, stated, truth) if stated else None)
    return items


def judged_scores(judge: Judge, items: list[JudgeItem | None], failed: float | None = 0.0) -> list[float | None]:
    """The judge's verdict per item, asked in one batch; 0.0 where there is no reasoning (None); `failed` where
    the judge failed under on_failure=zero (0.0 for the reward, None for the evaluation's judge score)."""
    verdicts = iter(judge.verdicts([item for item in items if item is not None]))
    scores = [next(verdicts) if item is not None else 0.0 for item in items]
    return [failed if score is None else score for score in scores]


class SemanticAlignmentReward:
    """TRL reward: the judge's verdict (1.0 consistent, 0.0 not) on the completion's reasoning.

    A completion that is not well-formed has no reasoning and scores 0 without asking the judge. Logs `judge/failures` (items
    scored 0 because the judge failed, under judge.on_failure=zero) and `judge/requests` (cache misses)
    per step through TRL's log_metric hook.
    """

    __name__ = "semantic"
    needs_reasoning = True  # config checks refuse it with a format without reasoning (reasoning=none)

    def __init__(self, judge: Judge, reasoning: str = DEFAULT) -> None:
        self.judge = judge
        self.reasoning = reasoning  # the format's reasoning block is judged (config checks refuse reasoning=none)

    def __call__(self, completions: list[Any], question: list[str], answer_text: list[str],
                 findings: list[str] | None = None, log_metric: Callable[[str, float], None] | None = None,
                 **kwargs: Any) -> list[float]:
        items = judge_items(completions, question, answer_text, findings, self.reasoning)
        failures, requests = self.judge.failures, self.judge.requests
        rewards = judged_scores(self.judge, items)
        if log_metric is not None:
            log_metric("judge/failures", float(self.judge.failures - failures))
            log_metric("judge/requests", float(self.judge.requests - requests))
        return rewards
