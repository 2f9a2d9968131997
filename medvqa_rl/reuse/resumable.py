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

A run dir is held by one process at a time (run_dir_lock: filelock's FileLock on <run_dir>/.run.lock, an OS
lock that dies with its process, so a killed run leaves nothing to clean up): a second process with the same
run dir (a duplicated array task, the same command twice) is refused with RunDirBusy naming the holder's pid
and host, before it reads or moves anything, and writes no failure record there.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import traceback
from contextlib import contextmanager, nullcontext
from pathlib import Path

from filelock import FileLock, Timeout
from omegaconf import DictConfig

from medvqa_rl.bookkeeping.checkpoints import TRAINER_DIR, checkpoint_step, remove_checkpoints, resumable_checkpoint
from medvqa_rl.config_checks import check_config
from medvqa_rl.data.test_sets import FOLDER as TEST_SETS_DIR  # the extra test sets' predictions
from medvqa_rl.distributed import process_state
from medvqa_rl.tracking import start_wandb
from medvqa_rl.bookkeeping.provenance import (PREFIX, REUSE_PARTS, config_fingerprint, differences, reuse_key,
                                              run_provenance)
from medvqa_rl.bookkeeping.run_record import FAILURE_FILE, finished_record, read_json_object, write_json
from medvqa_rl.reuse.shared_arms import copy_twin_record, finished_twin
from medvqa_rl.training.preemption import Preempted

log = logging.getLogger(__name__)

LOCK_FILE = ".run.lock"  # held while a process works in the run dir
HOLDER_FILE = ".run.lock.holder.json"  # who holds it: pid, host, since


class RunDirBusy(RuntimeError):
    """Another process is working in this run dir."""


@contextmanager
def run_dir_lock(run_dir: Path):
    """Holds run_dir for this process, or raises RunDirBusy naming the process (pid, host) that holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = read_json_object(run_dir / HOLDER_FILE) or {}
        raise RunDirBusy(f"{run_dir} is in use by pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
                         f"(since {holder.get('since', '?')}): the same run is already running there (a duplicated "
                         "array task, or the command started twice); not started again") from None
    try:
        write_json(run_dir / HOLDER_FILE, {"pid": os.getpid(), "host": socket.gethostname(),
                                           "since": time.strftime("%Y-%m-%dT%H:%M:%S")})
        yield
    finally:
        lock.release()


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
    # The main process holds the run dir (the others work in it under the main one's lock).
    with run_dir_lock(run_dir) if state.is_main_process else nullcontext():
        return _skip_resume_or_run(run_fn, cfg, run_dir, provenance)


def _skip_resume_or_run(run_fn, cfg: DictConfig, run_dir: Path, provenance: dict) -> dict:
    state = process_state()
    done = finished_record(run_dir)
    if done is not None:
        differ = differences(done, provenance, REUSE_PARTS)
        say = log.info if state.is_main_process else log.debug  # every process decides, one says it
        if not differ:
            other = differences(done, provenance, ("code", "versions"))
            say("skipped: %s already holds a finished run of this config, init, data and process count%s",
                run_dir, f" (kept although its {'; '.join(other)} differ)" if other else "")
            if state.is_main_process and not cfg.keep_checkpoints:  # killed after its record, before the clean-up
                remove_checkpoints(run_dir)
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
    try:  # whole or not at all (a full run dir must not leave an empty failure.json); the log keeps the reason
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / FAILURE_FILE, failure, indent=2)
    except OSError as write_error:
        log.error("run failed (%s: %s); %s could not be written (%s)", failure["error_type"], failure["message"],
                  run_dir / FAILURE_FILE, write_error)
        return failure
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
