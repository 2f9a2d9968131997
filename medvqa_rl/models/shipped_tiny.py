"""The tiny base and instruct checkpoints shipped inside the package (medvqa_rl/models/tiny_checkpoints/).

A newcomer starts from these published weights instead of pretraining on their own laptop, where CPU
float kernels and library versions would build a different model. They are used whenever the run's
`family.build` equals the config they were built from (recorded in build_info.json with its cache
key, the versions that built them, a probe of the instruct's quality and a SHA-256 of every file);
any other family.build config builds and caches its own (medvqa_rl/models/tiny_inits.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "tiny_checkpoints"
BUILD_INFO = "build_info.json"
REBUILD_COMMAND = "python -m medvqa_rl.build_tiny --ship"


class ShippedCheckpointError(RuntimeError):
    """A shipped tiny checkpoint file is missing or does not match its recorded checksum."""


def shipped_build_info(root: Path = SHIPPED_DIR) -> dict | None:
    """The shipped build's record, or None when the package ships no tiny checkpoints."""
    path = root / BUILD_INFO
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ShippedCheckpointError(f"{path} is not valid JSON ({error}); restore it from the package or "
                                     f"rebuild the shipped tiny checkpoints with `{REBUILD_COMMAND}`") from error


def shipped_checkpoint(stage: str, key: str, root: Path = SHIPPED_DIR) -> Path | None:
    """The shipped checkpoint folder of ``stage`` when it was built from the config with cache key ``key``,
    verified file by file; None when no shipped build matches that config."""
    info = shipped_build_info(root)
    if info is None or info["cache_key"] != key:
        return None
    for name, digest in info["files"].items():
        if name.split("/")[0] != stage:
            continue
        path = root / name
        if not path.exists():
            raise ShippedCheckpointError(f"shipped tiny checkpoint file {path} is missing; reinstall the package "
                                         f"or rebuild it with `{REBUILD_COMMAND}`")
        if file_digest(path) != digest:
            raise ShippedCheckpointError(f"shipped tiny checkpoint file {path} is corrupt (its SHA-256 differs from "
                                         f"{root / BUILD_INFO}); reinstall the package or rebuild it with "
                                         f"`{REBUILD_COMMAND}`")
    return root / stage


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ship(built_root: Path, info: dict, root: Path = SHIPPED_DIR) -> Path:
    """Copies a built cache folder (base/ and instruct/) into ``root`` with build_info.json (``info`` plus a
    SHA-256 of every copied file)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    files = {}
    for stage in ("base", "instruct"):
        shutil.copytree(built_root / stage, root / stage)
        for path in sorted((root / stage).iterdir()):
            files[f"{stage}/{path.name}"] = file_digest(path)
    (root / BUILD_INFO).write_text(json.dumps({**info, "files": files}, indent=2, sort_keys=True) + "\n")
    return root
