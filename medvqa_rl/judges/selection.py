"""Which judge a run uses: the semantic reward's, or the configured one for the evaluation's judge score."""

from __future__ import annotations

import logging

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def reward_uses_judge(cfg: DictConfig) -> bool:
    return any("judge" in spec for spec in cfg.reward.functions.values())


def judge_backend(cfg: DictConfig) -> str:
    """The back end (rule, hf, openai) of the judge group's judge if this run builds it, or "none"."""
    if not (reward_uses_judge(cfg) or (cfg.eval.judge_score and cfg.eval.get("judge") is None)):
        return "none"
    backend = get_class(cfg.judge._target_).backend
    if backend == "rule" and cfg.dataset.name != "synthetic" and not reward_uses_judge(cfg):
        return "none"  # the rule judge needs ground-truth findings; only the optional judge score is lost
    return backend


def evaluation_judge_name(cfg: DictConfig) -> str | None:
    """Which judge scores the evaluation (metrics.json `eval/judge`): "<backend>" or "<backend>:<model>", with
    " (reward judge)" when it is the judge the policy was trained to please; None without a judge score."""
    if not cfg.eval.judge_score:
        return None
    if cfg.eval.get("judge") is not None:
        return _describe(cfg.eval.judge)
    if judge_backend(cfg) == "none":
        return None
    return _describe(cfg.judge) + (" (reward judge)" if reward_uses_judge(cfg) else "")


def _describe(judge: DictConfig) -> str:
    backend = get_class(judge._target_).backend
    return f"{backend}:{judge.model}" if judge.get("model") else backend


def evaluation_judge(cfg: DictConfig, rewards: list):
    """The judge of the evaluation's judge score: eval.judge (the eval_judge group) when set, so an arm trained
    with the semantic reward is not scored by the judge it was trained to please; else the semantic reward's
    own judge (one cache and one loaded model for training and evaluation); else one built from cfg.judge;
    None when eval.judge_score is false or no judge can score this dataset."""
    if not cfg.eval.judge_score:
        return None
    if cfg.eval.get("judge") is not None:
        return instantiate(cfg.eval.judge)
    for reward in rewards:
        if hasattr(reward, "judge"):
            return reward.judge
    if judge_backend(cfg) == "none":
        log.info("no judge score: judge=rule without ground-truth findings")
        return None
    return instantiate(cfg.judge)
