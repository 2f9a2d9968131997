"""The run's local record in its directory: metrics.json (flat keys), predictions.jsonl, history.jsonl
(the trainer's per-step logs) and resolved_config.yaml."""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

MODEL_DIR = "model"  # the trained policy (or LoRA adapters) and processor of a finished run
INIT_METRICS = "init_metrics.json"

PACKAGES = ("medvqa_rl", "torch", "transformers", "trl", "peft", "datasets", "hydra-core", "wandb")


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def write_json(path: Path, value, **dumps) -> Path:
    """Written whole or not at all (a temporary file, named for this process, renamed): a process killed here
    leaves no half file, and processes writing the same path just replace each other's."""
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(value, **dumps))
    os.replace(partial, path)
    return path


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    """metrics.json, written last and atomically: its presence marks a finished run."""
    return write_json(Path(run_dir) / "metrics.json", metrics, indent=2, sort_keys=True)


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


def write_init_record(run_dir: Path, fingerprint: str, metrics: dict, predictions: list[dict]) -> None:
    """The init evaluation, written as soon as it is done: a resumed run reuses it instead of redoing it."""
    write_jsonl(run_dir, predictions, "init_predictions.jsonl")
    write_json(Path(run_dir) / INIT_METRICS, {"config_fingerprint": fingerprint, "metrics": metrics}, indent=2)


def read_init_record(run_dir: Path, fingerprint: str) -> dict | None:
    """The init metrics recorded by an earlier attempt of this config, else None."""
    path = Path(run_dir) / INIT_METRICS
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record["metrics"] if record.get("config_fingerprint") == fingerprint else None
