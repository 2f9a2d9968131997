"""The run's local record: metrics.json (flat keys) and predictions.jsonl in the run directory."""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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
    path = Path(run_dir) / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return path


def write_predictions(run_dir: Path, predictions: list[dict], name: str = "predictions.jsonl") -> Path:
    path = Path(run_dir) / name
    with path.open("w") as f:
        for row in predictions:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
