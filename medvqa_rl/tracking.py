"""W&B mirror of the run record. Optional: the local record never depends on it."""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from medvqa_rl.judges.selection import judge_backend

FACTORS = ("model_init", "reward", "length_reward", "bias", "family", "dataset", "method")


def factor_choices(cfg: DictConfig) -> dict[str, str]:
    """The chosen option of every config group, plus the judge back end (reward and/or judge score; or "none")."""
    return {f: str(cfg[f].name) for f in FACTORS} | {"judge": judge_backend(cfg)}


def start_wandb(cfg: DictConfig, run_dir: str):
    """Starts a W&B run (offline by default) carrying the resolved config; None when disabled."""
    if cfg.wandb.mode == "disabled":
        return None
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    config = OmegaConf.to_container(cfg, resolve=True)
    choices = factor_choices(cfg)
    config.update({f"factor/{f}": choice for f, choice in choices.items()})
    return wandb.init(
        mode=cfg.wandb.mode,
        project=cfg.wandb.project,
        entity=cfg.wandb.entity,
        group=cfg.wandb.group,
        job_type=cfg.method.name,
        tags=[f"{f}={choice}" for f, choice in choices.items()] + list(cfg.wandb.tags),
        config=config,
        dir=run_dir,
        reinit="finish_previous",
    )


def finish_wandb(run, metrics: dict) -> None:
    if run is None:
        return
    run.summary.update(metrics)
    run.finish()
