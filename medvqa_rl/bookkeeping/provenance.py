"""What produced a run's numbers, as a few short digests ("parts") that a record carries and reuse compares.

Parts (each a hex digest or a plain value; metrics.json holds them as `provenance/<part>`):
- config: the resolved config without presentation keys (config_fingerprint);
- init: the init checkpoint's contents (a local folder, the shipped or a built tiny model: SHA-256 of every
  file, plus the tiny recipe version; a hub id: the revision sha it resolves to in the local HF cache);
- data: the dataset's contents (synthetic: its generator's source; a real dataset: its loader version and
  the size and modification time of every file under its root, a hub snapshot's revision sha included);
- processes: how many processes train (batches and step counts depend on it);
- code: a digest of the package's Python source (git commit and dirty flag beside it, where there is one);
- versions: the library versions (run_record.package_versions).

What each kind of reuse requires to match (docs/sweeps.md#what-reuse-requires):
skip a finished run and resume a checkpoint: REUSE_PARTS; copy another sweep's record: COPY_PARTS.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import subprocess
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from medvqa_rl.bookkeeping.run_record import package_versions, write_cache_json
from medvqa_rl.cache_entries import set_aside
from medvqa_rl.data.record_cache import LOADER_VERSION, source_fingerprint
from medvqa_rl.data.sources import resolve_root
from medvqa_rl.data.synthetic import is_synthetic
from medvqa_rl.data.test_sets import extra_configs
from medvqa_rl.digests import PACKAGE_DIR, json_digest as _sha, source_digest
from medvqa_rl.models.loading import adapter_base, init_checkpoint
from medvqa_rl.models.tiny_inits import RECIPE_VERSION

log = logging.getLogger(__name__)

REUSE_PARTS = ("config", "init", "data", "processes")
COPY_PARTS = (*REUSE_PARTS, "code", "versions")
PARTS = COPY_PARTS
PREFIX = "provenance/"
# The code that scores an evaluation: a change here must not be served old init metrics from the cache.
SCORING_SOURCES = ("evaluation", "rewards", "judges", "prompts.py", "questions.py", "models/generation.py",
                   "reasoning_formats.py")
# Where a run's results go, how they are shown or whether its data comes from a cache, not what they are:
# left out of the fingerprint.
PRESENTATION_KEYS = ("wandb", "cache_dir", "sweep", "eval.progress", "dataset.cache", "save_model", "keep_checkpoints",
                     "method.save_steps", "method.save_total_limit", "method.push_to_hub", "method.hub_model_id")


def config_fingerprint(cfg: DictConfig) -> str:
    """A hash of the resolved config without PRESENTATION_KEYS: equal fingerprints compute the same run.

    The tiny-model build settings (family.build) count only when the run starts from the embedded tiny model
    (model_init.path null): a changed tiny default must not make a sweep of real checkpoints redo its points.
    """
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if resolved["model_init"]["path"] is not None:
        resolved["family"].pop("build", None)
    for dotted in PRESENTATION_KEYS:
        *parents, leaf = dotted.split(".")
        node = resolved
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    for test_set in (resolved.get("eval", {}).get("test_sets") or {}).values():
        test_set.pop("cache", None)  # eval.test_sets.<name>.cache, as dataset.cache
    return _sha(resolved)


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding the package, dirty = uncommitted changes to tracked files
    under the package or conf/; (None, None) outside a checkout (an installed wheel) or without git."""
    repo = PACKAGE_DIR.parent
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--",
                                 PACKAGE_DIR.name, "conf"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.stdout.strip())


def file_sha256(path: Path, cache_dir: str | Path | None = None) -> str:
    """SHA-256 of a file; with a cache_dir, remembered under <cache_dir>/digests/ by (path, size, mtime), so a
    multi-GB checkpoint is read once, not on every run that starts from it."""
    path = Path(path).resolve()
    stat = path.stat()
    entry = None
    if cache_dir is not None:
        entry = Path(cache_dir).expanduser() / "digests" / f"{_sha([str(path), stat.st_size, stat.st_mtime_ns])}.json"
        try:
            return json.loads(entry.read_text())["sha256"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as error:  # cut off or garbled: set aside, computed again
            log.warning("digest cache entry %s cannot be read (%s: %s); set aside as %s and computed again", entry,
                        type(error).__name__, error, set_aside(entry))
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    value = digest.hexdigest()
    if entry is not None:  # best effort: a full cache dir costs the next run a read, not this run
        write_cache_json(entry, {"path": str(path), "sha256": value})
    return value


def folder_digest(folder: Path, cache_dir: str | Path | None = None) -> str:
    """Digest of every file's relative path and SHA-256 under folder (hidden files aside)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    return _sha([(p.relative_to(folder).as_posix(), file_sha256(p, cache_dir)) for p in files])


def hub_revision(repo_id: str, revision: str | None, repo_type: str = "model") -> str | None:
    """The commit sha a hub id (at revision) resolves to in the local HF cache; None before its first download."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    filename = "config.json" if repo_type == "model" else "README.md"
    found = try_to_load_from_cache(repo_id, filename, revision=revision, repo_type=repo_type)
    if not isinstance(found, str):
        return None
    parts = Path(found).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def init_identity(cfg: DictConfig, checkpoint: str) -> tuple[str, str]:
    """(digest, description) of the init checkpoint the run starts from."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        digest = folder_digest(path, cfg.cache_dir)
        if cfg.model_init.path is None:
            return _sha(["tiny", RECIPE_VERSION, digest]), f"tiny {cfg.model_init.name}, recipe {RECIPE_VERSION}, files {digest}"
        base = adapter_base(str(path), cfg.model_init.get("adapter_base"))
        if base:  # LoRA adapters: the numbers depend on the checkpoint they apply to as much
            base_digest, base_source = init_identity(cfg, base)
            return _sha(["adapters", digest, base_digest]), f"LoRA adapters {path}, files {digest}, on {base_source}"
        return digest, f"local {path}, files {digest}"
    revision = cfg.model_init.get("revision")
    resolved = hub_revision(str(checkpoint), revision)
    name = f"hub {checkpoint}@{resolved or revision or 'default branch'}" + ("" if resolved else " (not resolved: not cached yet)")
    return _sha(["hub", str(checkpoint), resolved or revision]), name


def data_identity(dataset_cfg: DictConfig) -> tuple[str, str]:
    """(digest, description) of the data the run reads; its settings are in the config part."""
    if is_synthetic(dataset_cfg):
        digest = source_digest("data/synthetic.py")
        return digest, f"synthetic generator {digest}"
    root = resolve_root(str(dataset_cfg.path), dataset_cfg.get("revision"))
    files = source_fingerprint(root)
    snapshot = root.name if root.parent.name == "snapshots" else None  # a hub dataset in the HF cache
    digest = _sha([LOADER_VERSION, snapshot, files])
    return digest, f"{dataset_cfg.path}" + (f"@{snapshot}" if snapshot else "") + f", {len(files)} files {digest}"


def run_provenance(cfg: DictConfig, processes: int, checkpoint: str | None = None) -> dict[str, str]:
    """Every part (digests) plus descriptions (`<part>/source`, the git commit and dirty flag), as the flat
    `provenance/...` keys of a record. checkpoint: the init folder or hub id (default: resolved from cfg)."""
    init, init_source = init_identity(cfg, checkpoint or init_checkpoint(cfg))
    data, data_source = data_identity(cfg.dataset)
    test_sets = {name: data_identity(dataset) for name, dataset in extra_configs(cfg).items()}
    if test_sets:  # the extra test sets' data (eval.test_sets) change the record as much
        data = _sha([data, {name: digest for name, (digest, _) in test_sets.items()}])
        data_source += "".join(f"; test set {name}: {source}" for name, (_, source) in test_sets.items())
    commit, dirty = git_state()
    versions = {k: v for k, v in package_versions().items() if k != "medvqa_rl"}
    record = {"config": config_fingerprint(cfg), "init": init, "init/source": init_source, "data": data,
              "data/source": data_source, "processes": str(processes), "code": source_digest(),
              "code/git_commit": commit, "code/git_dirty": dirty, "versions": _sha(versions)}
    return {PREFIX + k: v for k, v in record.items()}


def differences(recorded: dict, current: dict, parts=REUSE_PARTS) -> list[str]:
    """The parts (of `parts`) in which a record differs from the current provenance, described for a log line:
    `init (a1b2 -> c3d4)`; a record written before provenance was recorded differs in every part it lacks."""
    found = []
    for part in parts:
        key = PREFIX + part
        old, new = recorded.get(key), current.get(key)
        if part == "config" and old is None:
            old = recorded.get("config_fingerprint")
        if old != new:
            source = current.get(f"{key}/source")
            found.append(f"{part} ({old or 'not recorded'} -> {new}" + (f": {source}" if source else "") + ")")
    return found


def reuse_key(provenance: dict, parts=REUSE_PARTS) -> dict[str, str]:
    """The parts of provenance that reuse compares, as stored beside a checkpoint or an init record."""
    return {PREFIX + p: provenance.get(PREFIX + p) for p in parts}
