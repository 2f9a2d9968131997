"""Reward functions for GRPO on 4-option medical VQA."""

from medvqa_rl.rewards.accuracy import AccuracyReward
from medvqa_rl.rewards.completion_parsing import (
    FORMAT_PATTERN,
    answer_letter,
    completion_text,
    is_well_formed,
    reasoning_text,
)
from medvqa_rl.rewards.format import FormatReward
from medvqa_rl.rewards.length import CorrectnessWeightedLengthReward, ExtendedChainReward
from medvqa_rl.rewards.semantic import SemanticAlignmentReward

__all__ = [
    "FORMAT_PATTERN",
    "AccuracyReward",
    "CorrectnessWeightedLengthReward",
    "ExtendedChainReward",
    "FormatReward",
    "SemanticAlignmentReward",
    "answer_letter",
    "completion_text",
    "is_well_formed",
    "reasoning_text",
]
