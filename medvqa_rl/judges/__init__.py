"""Medical semantic alignment judges: is a model's reasoning clinically consistent with the reference?"""

from medvqa_rl.judges.base import Judge, JudgeError, JudgeItem
from medvqa_rl.judges.hf import HFJudge
from medvqa_rl.judges.openai_chat import OpenAIJudge
from medvqa_rl.judges.rule import RuleJudge

__all__ = ["HFJudge", "Judge", "JudgeError", "JudgeItem", "OpenAIJudge", "RuleJudge"]
