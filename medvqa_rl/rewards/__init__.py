"""Reward functions for GRPO on medical VQA: multiple-choice (closed) and free-text (open) questions."""

from medvqa_rl.rewards.accuracy import AccuracyReward
from medvqa_rl.rewards.answer_f1 import OpenAnswerF1Reward
from medvqa_rl.rewards.completion_parsing import (
    WellFormed,
    answer_content,
    completion_text,
    is_well_formed,
    reasoning_text,
    well_formed,
    well_formed_reasoning,
)
from medvqa_rl.rewards.correctness import answer_f1, is_correct, parsed_answer
from medvqa_rl.rewards.format import FormatReward
from medvqa_rl.rewards.length import CorrectnessWeightedLengthReward, ExtendedChainReward
from medvqa_rl.rewards.option_letter import answer_letter
from medvqa_rl.rewards.semantic import SemanticAlignmentReward

__all__ = [
    "AccuracyReward",
    "CorrectnessWeightedLengthReward",
    "ExtendedChainReward",
    "FormatReward",
    "OpenAnswerF1Reward",
    "SemanticAlignmentReward",
    "WellFormed",
    "answer_content",
    "answer_f1",
    "answer_letter",
    "completion_text",
    "is_correct",
    "is_well_formed",
    "parsed_answer",
    "reasoning_text",
    "well_formed",
    "well_formed_reasoning",
]
