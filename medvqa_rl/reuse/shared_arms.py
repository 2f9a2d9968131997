"""One computation per config across a study suite: the paper's one-factor studies share their reference arm
(instruct, accuracy reward, no length reward, GRPO), so `sweep=init`, `semantic`, `length`, `bias` and
`methods` would train the same config at the same seed five times. A grid point of a named sweep whose config
(its fingerprint, which leaves the sweep's name out) already finished in another sweep under the same
sweep.root takes that run's record instead of training again, when the whole provenance matches
(provenance.COPY_PARTS: config, init, data, processes, code and library versions): the rerun would compute
the same numbers. A finished run of the same config that differs in another part is not copied (a log line
names the parts). `sweep.reuse_finished=false` trains every point itself. The copy gets a W&B run of its
own, marked as one (tracking.mirror_copied_run), so the W&B side of a study has every arm too.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from omegaconf import DictConfig

from medvqa_rl.data.test_sets import FOLDER as TEST_SETS_DIR  # the extra test sets' predictions
from medvqa_rl.tracking import mirror_copied_run
from medvqa_rl.bookkeeping.provenance import COPY_PARTS, PREFIX, differences
from medvqa_rl.bookkeeping.run_record import MODEL_DIR, finished_record, write_metrics, write_resolved_config

log = logging.getLogger(__name__)

# The computed record that the twin's folder holds; metrics.json is written last (it marks the run finished),
# resolved_config.yaml is this grid point's own (its sweep name).
COPIED = ("predictions.jsonl", "init_predictions.jsonl", "init_metrics.json", "history.jsonl", MODEL_DIR,
          TEST_SETS_DIR)


def finished_twin(cfg: DictConfig, run_dir: Path, provenance: dict) -> tuple[Path, dict] | None:
    """(folder, metrics) of a finished run (run_record.finished_record) with this provenance (COPY_PARTS) in
    another grid point of the same sweep.root, or None (not a named sweep, reuse switched off, none found)."""
    if cfg.sweep.name is None or not cfg.sweep.get("reuse_finished", True):
        return None
    root, here = Path(cfg.sweep.root), Path(run_dir).resolve()
    config = provenance[PREFIX + "config"]
    for metrics_file in sorted(root.glob("*/*/metrics.json")):
        twin = metrics_file.parent
        metrics = None if twin.resolve() == here else finished_record(twin)
        # An original, never a copy: a chain of copies would hide where the numbers came from.
        if metrics is None or "reused_from" in metrics or metrics.get("config_fingerprint") != config:
            continue
        differ = differences(metrics, provenance, COPY_PARTS)
        if not differ:
            return twin, metrics
        log.info("not reused: %s finished this config, but differs in %s", twin, "; ".join(differ))
    return None


def copy_twin_record(cfg: DictConfig, run_dir: Path, twin: Path, metrics: dict) -> dict:
    """Writes the twin's record into run_dir (its model's files hard-linked where the file system allows, since a
    real model is gigabytes and never rewritten in place; the rest copied), with this grid point's resolved
    config and `reused_from` naming the twin; returns the metrics."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source, target = twin / name, run_dir / name
        if source.is_dir():
            shutil.copytree(source, target, copy_function=_link_or_copy, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, target)
    write_resolved_config(run_dir, cfg)
    record = {**metrics, "reused_from": str(twin)}
    write_metrics(run_dir, record)
    mirror_copied_run(cfg, run_dir, record)  # never raises: the local copy stands
    log.info("reused: %s already finished this run (%s) in another sweep; its record was copied here (no "
             "training)", twin, metrics.get("config_fingerprint"))
    return record


def _link_or_copy(source, target) -> None:
    target = Path(target)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
