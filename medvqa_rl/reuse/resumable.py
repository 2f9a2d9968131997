"""Runs that a sweep can resume: skip a grid point already finished by the same run, keep (never delete) the
records a rerun replaces, and leave a failure record when a run raises.

A named sweep gives every grid point a stable folder (sweeps/_common.yaml), and a single run the
folder its command names (hydra.run.dir), so rerunning the same command meets each earlier attempt there.
"The same run" is judged by its provenance (medvqa_rl/bookkeeping/provenance.py): config, init, data and processes for
a skip or a resume; the code and library versions too for a copy from another sweep. What is found:
- a finished record (run_record.finished_record) of the same run: skipped (its metrics are returned);
- no record, but the same run finished in another named sweep under the same sweep.root (the studies'
  shared reference arm): that record is copied here (medvqa_rl/reuse/shared_arms.py);
- a complete checkpoint of the same run (killed, preempted, failed after saving): resumed from the
  newest one (medvqa_rl/bookkeeping/checkpoints.py); the earlier failure.json is moved into previous/<time>/;
- a record or checkpoints of a run that differs (a log line names the parts), failure.json without a
  checkpoint, or a record cut off mid-run: moved into previous/<time>/ and the point is run again.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import traceback
from pathlib import Path

from omegaconf import DictConfig

from medvqa_rl.bookkeeping.checkpoints import TRAINER_DIR, checkpoint_step, resumable_checkpoint
from medvqa_rl.config_checks import check_config
from medvqa_rl.data.test_sets import FOLDER as TEST_SETS_DIR  # the extra test sets' predictions
from medvqa_rl.distributed import process_state
from medvqa_rl.tracking import start_wandb
from medvqa_rl.bookkeeping.provenance import (PREFIX, REUSE_PARTS, config_fingerprint, differences, reuse_key,
                                              run_provenance)
from medvqa_rl.bookkeeping.run_record import FAILURE_FILE, finished_record
from medvqa_rl.reuse.shared_arms import copy_twin_record, finished_twin
from medvqa_rl.training.preemption import Preempted

log = logging.getLogger(__name__)

# Everything a run writes into its folder besides Hydra's .hydra/ (rewritten by every attempt).
RECORD_FILES = ("metrics.json", "predictions.jsonl", "init_predictions.jsonl", "init_metrics.json", "history.jsonl",
                "resolved_config.yaml", "wandb_run_id.txt", "model", TRAINER_DIR, FAILURE_FILE, TEST_SETS_DIR)


def set_aside_earlier_attempt(run_dir: Path, names=RECORD_FILES) -> Path | None:
    """Moves an earlier attempt's record files (those of ``names`` present) into run_dir/previous/<time>/;
    returns that folder."""
    run_dir = Path(run_dir)
    found = [run_dir / name for name in names if (run_dir / name).exists()]
    if not found:
        return None
    target = run_dir / "previous" / time.strftime("%Y%m%d-%H%M%S")
    while target.exists():
        target = target.with_name(target.name + "+")
    target.mkdir(parents=True)
    for path in found:
        shutil.move(str(path), target / path.name)
    return target


def resumable_run(run_fn, cfg: DictConfig, run_dir: str | Path) -> dict:
    """run_fn(cfg, run_dir, resume_from=<checkpoint or None>, provenance=<its provenance>) unless run_dir
    holds a finished record of the same run; failures leave failure.json.

    The exception is re-raised: Hydra's launchers record it, run the rest of the grid, and exit non-zero.
    """
    run_dir = Path(run_dir)
    state = process_state()
    try:
        check_config(cfg)  # a bad value fails before the provenance reads the init and the data
        provenance = run_provenance(cfg, state.num_processes)
    except BaseException as error:  # nothing loaded yet; the W&B mark only where W&B itself is not the problem
        if state.is_main_process:
            failure = write_failure(run_dir, error, config_fingerprint(cfg))
            if not str(error).startswith("wandb."):
                record_failure_in_wandb(cfg, run_dir, failure)
        raise
    done = finished_record(run_dir)
    if done is not None:
        differ = differences(done, provenance, REUSE_PARTS)
        say = log.info if state.is_main_process else log.debug  # every process decides, one says it
        if not differ:
            other = differences(done, provenance, ("code", "versions"))
            say("skipped: %s already holds a finished run of this config, init, data and process count%s",
                run_dir, f" (kept although its {'; '.join(other)} differ)" if other else "")
            return done
        say("not skipped: the finished run in %s differs in %s; it is set aside and run again", run_dir,
            "; ".join(differ))
    key = reuse_key(provenance)
    resume_from = resumable_checkpoint(run_dir, key)  # read by every process before anything moves
    twin = None if resume_from else finished_twin(cfg, run_dir, provenance)
    state.wait_for_everyone()
    if twin is not None:
        if state.is_main_process:
            set_aside_earlier_attempt(run_dir)
            done = copy_twin_record(cfg, run_dir, *twin)
        state.wait_for_everyone()
        return done if state.is_main_process else {}
    if state.is_main_process:
        earlier = set_aside_earlier_attempt(run_dir, (FAILURE_FILE,) if resume_from else RECORD_FILES)
        if resume_from is not None:
            log.info("resuming from %s (step %d)", resume_from, checkpoint_step(resume_from))
        elif earlier is not None:
            log.info("an earlier attempt's record was moved to %s; running again", earlier)
    state.wait_for_everyone()
    try:
        return run_fn(cfg, run_dir, resume_from=resume_from, provenance=provenance)
    except BaseException as error:  # interrupts too: the record says the run did not finish
        if state.is_main_process:
            failure = write_failure(run_dir, error, provenance[PREFIX + "config"])
            record_failure_in_wandb(cfg, run_dir, failure)
        raise


def write_failure(run_dir: Path, error: BaseException, fingerprint: str) -> dict:
    failure = {
        "status": _status(error),
        "error_type": type(error).__name__,
        "message": str(error),
        "traceback": traceback.format_exc(),
        "config_fingerprint": fingerprint,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILURE_FILE).write_text(json.dumps(failure, indent=2))
    log.error("run failed (%s: %s); recorded in %s", failure["error_type"], failure["message"], run_dir / FAILURE_FILE)
    return failure


def _status(error: BaseException) -> str:
    if isinstance(error, Preempted):
        return "preempted"  # a checkpoint was saved: the rerun resumes
    return "failed" if isinstance(error, Exception) else "interrupted"


def record_failure_in_wandb(cfg: DictConfig, run_dir: Path, failure: dict) -> None:
    """Marks the W&B run failed (exit code 1) with the error in its summary; starts one if the run failed
    before W&B did. Best effort: the local failure.json is the record."""
    if cfg.wandb.mode == "disabled":
        return
    try:
        import wandb

        run = wandb.run if wandb.run is not None else start_wandb(cfg, str(run_dir))
        run.summary.update({f"failure/{k}": failure[k] for k in ("status", "error_type", "message")})
        run.finish(exit_code=1)
    except Exception as wandb_error:  # noqa: BLE001 - the run's own error is the one to raise
        log.warning("could not record the failure in W&B: %s", wandb_error)
