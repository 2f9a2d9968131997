"""One trainer per method (TRL's GRPOTrainer, SFTTrainer, DPOTrainer), built from config."""

from __future__ import annotations

from omegaconf import DictConfig

from medvqa_rl.training.dpo import build_dpo_trainer
from medvqa_rl.training.grpo import build_grpo_trainer
from medvqa_rl.training.sft import build_sft_trainer

TRAINERS = ("grpo", "sft", "dpo")
NO_TRAINING = "none"  # method=none: the evaluation-only run (medvqa_rl/run.py), no trainer


def build_trainer(cfg: DictConfig, model, processor, rewards: list, train_records: list[dict], output_dir: str,
                  report_to: str):
    """The TRL trainer of cfg.method.trainer; rewards are GRPO's only."""
    kind = cfg.method.trainer
    if kind == "grpo":
        return build_grpo_trainer(cfg, model, processor, rewards, train_records, output_dir, report_to)
    if kind == "sft":
        return build_sft_trainer(cfg, model, processor, train_records, output_dir, report_to)
    if kind == "dpo":
        return build_dpo_trainer(cfg, model, processor, train_records, output_dir, report_to)
    raise ValueError(f"method.trainer must be one of {TRAINERS}, got {kind!r}")
