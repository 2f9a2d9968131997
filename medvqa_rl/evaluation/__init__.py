"""Evaluation shared by every method (GRPO, SFT, DPO) and by the init model before training."""

from medvqa_rl.evaluation.evaluate import evaluate, judge_verdicts, summarize
from medvqa_rl.models.generation import generate_greedy
from medvqa_rl.evaluation.perplexity import answer_perplexity, reference_perplexity
from medvqa_rl.evaluation.similarity import ReasoningSimilarity

__all__ = ["ReasoningSimilarity", "answer_perplexity", "evaluate", "generate_greedy", "judge_verdicts", "reference_perplexity",
           "summarize"]
