"""Which judge a run uses: the semantic reward's, or the configured one for the evaluation's judge score."""

from __future__ import annotations

import logging

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def reward_uses_judge(cfg: DictConfig) -> bool:
    return any("judge" in spec for spec in cfg.reward.functions.values())


def judge_backend(cfg: DictConfig) -> str:
    """The back end (rule, hf, openai) of the judge this run builds, or "none"."""
    if not (reward_uses_judge(cfg) or cfg.eval.judge_score):
        return "none"
    backend = get_class(cfg.judge._target_).backend
    if backend == "rule" and cfg.dataset.name != "synthetic" and not reward_uses_judge(cfg):
        return "none"  # the rule judge needs ground-truth findings; only the optional judge score is lost
    return backend


def evaluation_judge(cfg: DictConfig, rewards: list):
    """The semantic reward's own judge (one cache and one loaded model for training and evaluation), else a
    judge built from cfg.judge when eval.judge_score asks for one, else None."""
    for reward in rewards:
        if hasattr(reward, "judge"):
            return reward.judge
    if judge_backend(cfg) == "none":
        log.info("no judge score: eval.judge_score=false or judge=rule without ground-truth findings")
        return None
    return instantiate(cfg.judge)
