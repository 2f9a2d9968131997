"""A killed run made from an unbroken one: what a run killed right after a checkpoint leaves on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

from medvqa_rl.bookkeeping.checkpoints import OWNER_FILE, TRAINER_DIR


def killed_after_checkpoint(unbroken: Path, killed: Path, step: int) -> Path:
    """killed/ holding the unbroken run's checkpoint-<step>, its owner mark and its init record, nothing else."""
    (killed / TRAINER_DIR).mkdir(parents=True)
    shutil.copytree(unbroken / TRAINER_DIR / f"checkpoint-{step}", killed / TRAINER_DIR / f"checkpoint-{step}")
    shutil.copy(unbroken / TRAINER_DIR / OWNER_FILE, killed / TRAINER_DIR)
    for name in ("init_metrics.json", "init_predictions.jsonl"):
        shutil.copy(unbroken / name, killed)
    return killed
