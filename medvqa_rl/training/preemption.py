"""Preemption: SIGTERM (SLURM's notice before a requeue, a preemption or the time limit) or SIGUSR2
(submitit's timeout signal) makes the trainer save a checkpoint at the end of the current step and stop;
the run then exits non-zero (Preempted) so the requeued job resumes from that checkpoint.

The handler only sets a flag: saving happens in the training loop, never inside a signal handler.
A handler installed before ours (submitit requeues the job from its SIGUSR2 handler) is called once the
checkpoint is written.
"""

from __future__ import annotations

import logging
import signal
from contextlib import contextmanager

import torch
from accelerate import PartialState
from transformers import TrainerCallback

log = logging.getLogger(__name__)

SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR2", None)) if s is not None)


class Preempted(Exception):
    """The run stopped on a signal after saving a checkpoint; rerunning it resumes from there."""


class PreemptionCallback(TrainerCallback):
    """Turns a received signal into "save now, then stop" at the next step end. Under several processes the
    decision is shared (any rank's signal stops every rank at the same step), so no rank waits at a
    collective the others never reach."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.stopped = False

    def on_step_end(self, args, state, control, **kwargs):
        if self._any_rank_received():
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def _any_rank_received(self) -> bool:
        received = bool(self.received)
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return received
        flag = torch.tensor([float(received)], device=PartialState().device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())


@contextmanager
def preemptible(callback: PreemptionCallback):
    """Installs the flag-setting handlers (main thread only) for the duration of training; afterwards calls
    the handlers they replaced for the signals received, and raises Preempted if any was."""
    previous = {}

    def on_signal(signum, frame):
        log.warning("received %s: saving a checkpoint at the end of this step, then stopping",
                    signal.Signals(signum).name)
        callback.received.append(signum)

    try:
        for signum in SIGNALS:
            previous[signum] = signal.signal(signum, on_signal)
    except ValueError:  # not the main thread (some launchers): no preemption handling
        log.info("not on the main thread: SIGTERM will not save a checkpoint")
    try:
        yield callback
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if callback.stopped:
        for signum in dict.fromkeys(callback.received):
            handler = previous.get(signum)
            if callable(handler):
                handler(signum, None)
        cause = signal.Signals(callback.received[0]).name if callback.received else "another rank's signal"
        raise Preempted(f"stopped on {cause} after saving a checkpoint; rerun the same command to resume")
