"""The trainer's checkpoints in a run dir (<run_dir>/trainer/checkpoint-<step>/): which one a rerun resumes
from, and cleaning them up once the run has finished.

A checkpoint is complete when the trainer got to its last file (trainer_state.json, written after the
weights, optimizer, scheduler and RNG states) and every file it holds reads back: JSON parses, safetensors
headers and torch's zip archives are intact. A run killed while saving leaves an incomplete newest
checkpoint; the previous one is used instead, with a warning naming the skipped one.

A node crash can leave a file whose length is right and whose blocks were never written (zeros: the page
cache was not flushed), which no header check sees. So once the Trainer has saved a checkpoint, ChecksumManifest
(a TrainerCallback) fsyncs its files and writes checksums.json (SHA-256 of every file), flushed too: a
checkpoint is complete only with a manifest that every file matches. A checkpoint without one (killed before
it, or written by an older version) is not resumed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import zipfile
from pathlib import Path

from transformers import TrainerCallback

from medvqa_rl.bookkeeping.provenance import differences, file_sha256
from medvqa_rl.bookkeeping.run_record import read_json_object, write_json

log = logging.getLogger(__name__)

TRAINER_DIR = "trainer"
OWNER_FILE = "provenance.json"  # in TRAINER_DIR: the run (config, init, data, processes) its checkpoints belong to
TRAINER_STATE = "trainer_state.json"
MANIFEST = "checksums.json"  # in each checkpoint: SHA-256 of every other file, written last
_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


def trainer_dir(run_dir: Path) -> Path:
    return Path(run_dir) / TRAINER_DIR


def checkpoints(run_dir: Path) -> list[Path]:
    """checkpoint-<step> folders under the run's trainer dir, newest (highest step) first."""
    root = trainer_dir(run_dir)
    found = [p for p in root.glob("checkpoint-*") if p.is_dir() and _CHECKPOINT.search(p.name)] if root.is_dir() else []
    return sorted(found, key=checkpoint_step, reverse=True)


def checkpoint_step(path: Path) -> int:
    return int(_CHECKPOINT.search(Path(path).name).group(1))


def incomplete_reason(path: Path) -> str | None:
    """Why the checkpoint cannot be resumed from (a file missing or unreadable), or None when it can."""
    path = Path(path)
    if not (path / TRAINER_STATE).is_file():
        return f"no {TRAINER_STATE} (killed while saving?)"
    manifest = read_json_object(path / MANIFEST)
    if manifest is None:
        return f"no readable {MANIFEST} (killed while saving, or saved by an older version)"
    for name, digest in sorted(manifest.items()):
        # No digest cache here: it is keyed by size and mtime, which a zeroed block keeps.
        if not (path / name).is_file() or file_sha256(path / name) != digest:
            return f"{name} does not match its checksum in {MANIFEST} (lost or corrupt: a crash before it was flushed?)"
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        try:
            _check_readable(file)
        except Exception as error:  # noqa: BLE001 - any failure to read the file makes the checkpoint unusable
            return f"{file.relative_to(path)} is unreadable ({type(error).__name__}: {error})"
    return None


def _check_readable(file: Path) -> None:
    if file.suffix == ".json":
        json.loads(file.read_text())
    elif file.suffix == ".safetensors":
        _check_safetensors(file)
    elif file.suffix in (".pt", ".pth", ".bin"):
        with zipfile.ZipFile(file) as archive:  # torch.save's format: a cut-off file has no central directory
            if archive.testzip() is not None:
                raise ValueError("a corrupt member")


def _check_safetensors(file: Path) -> None:
    """The header parses and the data section is as long as its last tensor offset says."""
    with file.open("rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_size))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if file.stat().st_size < 8 + header_size + end:
        raise ValueError("truncated tensor data")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(checkpoint: Path) -> None:
    """Flushes every file of a saved checkpoint to disk, then writes (and flushes) its checksums.json."""
    checkpoint = Path(checkpoint)
    files = sorted(p for p in checkpoint.rglob("*") if p.is_file() and p.name != MANIFEST)
    for file in files:
        _fsync(file)
    write_json(checkpoint / MANIFEST, {p.relative_to(checkpoint).as_posix(): file_sha256(p) for p in files}, indent=1)
    _fsync(checkpoint / MANIFEST)
    _fsync(checkpoint)  # the directory entries


class ChecksumManifest(TrainerCallback):
    """After each checkpoint save (the Trainer's files all written): write_manifest, on the main process."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_manifest(Path(args.output_dir) / f"checkpoint-{state.global_step}")
        return control


def resumable_checkpoint(run_dir: Path, key: dict) -> Path | None:
    """The newest complete checkpoint in run_dir of a run with this key (provenance.reuse_key: config, init,
    data and processes), or None (none, or another run's: the log line names what differs)."""
    found = checkpoints(run_dir)
    if not found:
        return None
    owner = read_json_object(trainer_dir(run_dir) / OWNER_FILE) or {}
    if owner != key:
        log.info("not resumed: the checkpoints in %s belong to a run that differs in %s", trainer_dir(run_dir),
                 "; ".join(differences(owner, key, [k.split("/", 1)[1] for k in key])))
        return None
    for path in found:
        reason = incomplete_reason(path)
        if reason is None:
            return path
        log.warning("skipping checkpoint %s: %s; trying the previous one", path, reason)
    return None


def mark_trainer_dir(run_dir: Path, key: dict) -> None:
    """Records which run (provenance.reuse_key) the checkpoints about to be written belong to."""
    root = trainer_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / OWNER_FILE, key, indent=2)


def remove_checkpoints(run_dir: Path) -> None:
    """Deletes the intermediate checkpoints of a finished run (its trained model is in <run_dir>/model/)."""
    for path in checkpoints(run_dir):
        shutil.rmtree(path, ignore_errors=True)
