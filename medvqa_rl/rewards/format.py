"""Format reward: is the completion well-formed in the reasoning format (think: one non-blank `<think>` block, then
one non-blank `<answer>` block, nothing but whitespace around them; none: the `<answer>` block alone; after: the
`<answer>` block then the `<think>` block; completion_parsing.well_formed)?"""

from __future__ import annotations

from typing import Any

from medvqa_rl.reasoning_formats import DEFAULT
from medvqa_rl.rewards.completion_parsing import completion_text, is_well_formed


class FormatReward:
    """TRL reward function; returns 1.0 per well-formed completion, else 0.0 (whitespace-only blocks included).

    TRL logs it as `rewards/format/mean`. Holds only the format's name, so it pickles for multiprocessing.
    """

    __name__ = "format"

    def __init__(self, reasoning: str = DEFAULT) -> None:
        self.reasoning = reasoning

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float]:
        return [1.0 if is_well_formed(completion_text(c), self.reasoning) else 0.0 for c in completions]
