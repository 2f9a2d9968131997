"""The run's local record in its directory: metrics.json (flat keys), predictions.jsonl, history.jsonl
(the trainer's per-step logs) and resolved_config.yaml."""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PACKAGES = ("medvqa_rl", "torch", "transformers", "trl", "peft", "datasets", "hydra-core", "wandb")


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    """Written whole or not at all (a temporary file renamed): a run killed here leaves no half record."""
    path = Path(run_dir) / "metrics.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(metrics, indent=2, sort_keys=True))
    os.replace(partial, path)
    return path


def write_jsonl(run_dir: Path, rows: list[dict], name: str) -> Path:
    """One JSON object a line: predictions, and history.jsonl (the trainer's logged steps)."""
    path = Path(run_dir) / name
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_resolved_config(run_dir: Path, cfg: DictConfig) -> Path:
    """The resolved config beside the metrics: it travels with them if a rerun sets the record aside."""
    path = Path(run_dir) / "resolved_config.yaml"
    OmegaConf.save(cfg, path, resolve=True)
    return path
