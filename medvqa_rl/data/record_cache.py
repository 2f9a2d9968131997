"""The processed-record cache: a real dataset is read, validated and its images processed once; later runs
memory-map the result.

An entry is `<cache_dir>/datasets/<dataset.name>-<digest>/`: the splits as a datasets.DatasetDict (train,
test; images encoded) saved with save_to_disk, and `skipped.json`, the skipped-row counts the run reports
as data/skipped/*. The digest covers what makes the records:
- the resolved dataset config (path, revision, files/splits, sizes, seed, on_bad_row, max_image_side,
  questions, ...; `cache` itself aside);
- LOADER_VERSION, bumped whenever the conversion of rows into records changes, and a digest of the data
  package's source (a loader change that forgot the bump still misses the cache);
- the source files: relative path, size and modification time (ns) of every file under the dataset
  root. Stat only, no reading: a rewritten or touched file misses the cache, at one stat per file (the
  whole root, because the loaders read split files, an image archive, an image folder or images at the
  root). A file whose bytes change while its size and mtime stay the same is not noticed.
An entry is built under a file lock (parallel sweep jobs: the first builds, the others wait and reuse it)
in a scratch folder renamed into place, so a killed or failing run (a bad row in error mode) leaves none.
An entry that cannot be read (cut off, zeroed) is named in a warning, set aside as <entry>.corrupt-<time> and
rebuilt; a cache dir that cannot be written (full, read-only) warns once, naming the entry, and the run goes on
with the records in memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable

from datasets import Dataset, DatasetDict
from filelock import FileLock

from medvqa_rl.cache_entries import set_aside
from medvqa_rl.digests import source_digest

log = logging.getLogger(__name__)

# Bump when loaders, validation or image processing change the records they make from the same files.
LOADER_VERSION = 1
SKIPPED_FILE = "skipped.json"


def cache_digest(dataset_cfg: dict, root: Path) -> str:
    """Digest of the resolved dataset config (without `cache`), LOADER_VERSION, the loaders' source and the source
    files' stats."""
    settings = {key: value for key, value in dataset_cfg.items() if key != "cache"}
    payload = json.dumps([LOADER_VERSION, source_digest("data"), settings, source_fingerprint(root)], sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def source_fingerprint(root: Path) -> list[tuple[str, int, int]]:
    """(path relative to root, size, mtime_ns) of every file under root, hidden files and folders aside.
    Links are followed: a hub snapshot links its files to blobs, a local copy may link its image folder."""
    entries = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                path = Path(folder, name)
                stat = path.stat()
                entries.append((path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return sorted(entries)


def cached_splits(dataset_cfg: dict, root: Path, cache_dir: str | Path,
                  build: Callable[[], tuple[dict[str, Dataset], Counter]]) -> tuple[DatasetDict, Counter]:
    """The splits and skipped-row counts of this dataset config: read from the cache, or made by `build`
    (which raises, writing nothing, on bad rows in error mode) and stored first. Returned memory-mapped."""
    entry = Path(cache_dir).expanduser() / "datasets" / f"{dataset_cfg['name']}-{cache_digest(dataset_cfg, root)}"
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{entry}.lock")
        lock.acquire()
    except OSError as error:  # a full or read-only cache dir: the records are made in memory, uncached
        log.warning("dataset cache not used, going on without it: %s (%s: %s)", entry, type(error).__name__, error)
        splits, skipped = build()
        return DatasetDict(splits), Counter(skipped)
    try:
        loaded = _load(entry) if entry.is_dir() else None
        if loaded is not None:  # the build logged its skipped rows; a hit says them again
            log.info("%s: processed records from the cache %s; skipped or left out: %s", dataset_cfg["name"], entry,
                     dict(loaded[1]))
            return loaded
        _remove_partials(entry)
        splits, skipped = build()
        if not _write(entry, splits, skipped):
            return DatasetDict(splits), Counter(skipped)
        return _load(entry) or (DatasetDict(splits), Counter(skipped))
    finally:
        lock.release()


def _load(entry: Path) -> tuple[DatasetDict, Counter] | None:
    """The entry's splits (memory-mapped) and skipped counts; None when it cannot be read (a truncated .arrow or
    skipped.json, a node crash's zeroed file): then it is named in a warning and set aside as
    <entry>.corrupt-<time> (kept for inspection), so the caller rebuilds it."""
    try:
        skipped = Counter(json.loads((entry / SKIPPED_FILE).read_text()))
        splits = DatasetDict.load_from_disk(str(entry))
        for split in splits.values():  # reads every record batch: a cut-off file fails here, not mid-run
            split.data.validate(full=True)
        return splits, skipped
    except Exception as error:  # noqa: BLE001 - whatever the damage, the entry is rebuilt from the source files
        log.warning("dataset cache entry %s cannot be read (%s: %s); set aside as %s and rebuilt", entry,
                    type(error).__name__, error, set_aside(entry))
        return None


def _write(entry: Path, splits: dict[str, Dataset], skipped: Counter) -> bool:
    """Best effort: a full or read-only cache dir warns once, naming the entry, and leaves nothing behind."""
    scratch = None
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{entry.name}.partial-", dir=entry.parent))
        DatasetDict(splits).save_to_disk(str(scratch))
        (scratch / SKIPPED_FILE).write_text(json.dumps(dict(sorted(skipped.items())), indent=1))
        os.rename(scratch, entry)  # atomic: the entry appears complete or not at all
    except OSError as error:
        log.warning("dataset cache entry not written, going on without it: %s (%s: %s)", entry,
                    type(error).__name__, error)
        return False
    finally:
        if scratch is not None and scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return True


def _remove_partials(entry: Path) -> None:
    """Scratch folders of builds that were killed: under the lock no other process is writing one."""
    for partial in entry.parent.glob(f".{entry.name}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)
