"""Which judge a run uses: the semantic reward's, or the configured one for the evaluation's judge score."""

from __future__ import annotations

import logging

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from medvqa_rl.data.synthetic import is_synthetic

log = logging.getLogger(__name__)


def reward_uses_judge(cfg: DictConfig) -> bool:
    return any("judge" in spec for spec in cfg.reward.functions.values())


def judge_backend(cfg: DictConfig) -> str:
    """The back end (rule, hf, openai) of the judge group's judge if this run builds it, or "none"."""
    if not (reward_uses_judge(cfg) or (cfg.eval.judge_score and cfg.eval.get("judge") is None)):
        return "none"
    backend = get_class(cfg.judge._target_).backend
    if backend == "rule" and not is_synthetic(cfg.dataset) and not reward_uses_judge(cfg):
        return "none"  # the rule judge needs ground-truth findings; only the optional judge score is lost
    return backend


def evaluation_judge_config(cfg: DictConfig) -> DictConfig | None:
    """The config of the judge that scores the evaluation: eval.judge (the eval_judge group) when set, else the
    judge group's when this run builds it; None when eval.judge_score is false or no judge can score."""
    if not cfg.eval.judge_score:
        return None
    if cfg.eval.get("judge") is not None:
        return cfg.eval.judge
    return None if judge_backend(cfg) == "none" else cfg.judge


def evaluation_judge_name(cfg: DictConfig) -> str | None:
    """Which judge scores the evaluation (metrics.json `eval/judge`): "<backend>" or "<backend>:<model>", with
    " (reward judge)" when it is the judge the policy was trained to please; None without a judge score."""
    judge = evaluation_judge_config(cfg)
    if judge is None:
        return None
    circular = cfg.eval.get("judge") is None and reward_uses_judge(cfg)
    return _describe(judge) + (" (reward judge)" if circular else "")


def _describe(judge: DictConfig) -> str:
    backend = get_class(judge._target_).backend
    return f"{backend}:{judge.model}" if judge.get("model") else backend


def evaluation_judge(cfg: DictConfig, rewards: list):
    """The judge of the evaluation's judge score: eval.judge (the eval_judge group) when set, so an arm trained
    with the semantic reward is not scored by the judge it was trained to please; else the semantic reward's
    own judge (one cache and one loaded model for training and evaluation); else one built from cfg.judge;
    None when eval.judge_score is false or no judge can score this dataset."""
    judge = evaluation_judge_config(cfg)
    if judge is None:
        if cfg.eval.judge_score:
            log.info("no judge score: judge=rule without ground-truth findings")
        return None
    if cfg.eval.get("judge") is None:
        for reward in rewards:
            if hasattr(reward, "judge"):
                return reward.judge
    return instantiate(judge)
