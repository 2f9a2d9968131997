"""Folder names of a named sweep's grid points: readable, the same on every rerun, and short enough
for any file system (a name holds at most 255 bytes; a grid point with many overrides goes past it)."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

MAX_NAME = 120


def grid_point_dir(override_dirname: str) -> str:
    """The grid point's overrides (`bias=dr_grpo,seed=1`), '/' replaced so a hub id stays one folder;
    past MAX_NAME characters, a prefix plus a hash of the whole (its .hydra/overrides.yaml lists them all)."""
    name = override_dirname.replace("/", "_") or "defaults"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(override_dirname.encode()).hexdigest()[:12]
    return f"{name[:MAX_NAME - len(digest) - 1]}-{digest}"


def register_resolver() -> None:
    """`${grid_point_dir:...}` for sweeps/_common.yaml; needed wherever Hydra resolves a job's folder."""
    OmegaConf.register_new_resolver("grid_point_dir", grid_point_dir, replace=True)
