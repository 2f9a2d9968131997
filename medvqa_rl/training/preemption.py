"""Preemption: SIGTERM (SLURM's notice before a requeue, a preemption or the time limit) or SIGUSR2
(submitit's timeout signal) makes the trainer save a checkpoint at the end of the current step and stop;
the run then exits non-zero (Preempted) so the requeued job resumes from that checkpoint.

One handler covers the whole run (run.run installs it first): during training it only sets a flag (saving
happens in the training loop, never inside a signal handler); before or after training (loading, the init
evaluation, the final evaluation, the record) it raises Preempted at once, so the run still leaves a
'preempted' failure.json and the rerun resumes from the newest checkpoint (one at max_steps trains nothing:
training/resume.py).
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
        self.training = False  # inside trainer.train(): a signal waits for the step's end

    def on_train_begin(self, args, state, control, **kwargs):
        self.training = True

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False

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
    """Installs the handlers (main thread only) for the duration of the block: inside training they set the
    callback's flag, outside it they raise Preempted. Afterwards calls the handlers they replaced for the signals
    received (submitit's requeue), and raises Preempted if training stopped on one."""
    previous = {}

    def on_signal(signum, frame):
        callback.received.append(signum)
        name = signal.Signals(signum).name
        if callback.training:
            log.warning("received %s: saving a checkpoint at the end of this step, then stopping", name)
            return
        log.warning("received %s outside training: stopping now", name)
        raise Preempted(f"stopped on {name} outside training (loading or evaluating); rerun the same command to "
                        "resume from the newest checkpoint")

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
        for signum in dict.fromkeys(callback.received):
            handler = previous.get(signum)
            if callable(handler):
                handler(signum, None)
    raise_if_stopped(callback)


def raise_if_stopped(callback: PreemptionCallback) -> None:
    """Preempted when training stopped on a signal (its checkpoint saved): nothing after training may run then,
    or the evaluation would score, record and clean up a run that did not reach max_steps."""
    if callback.stopped:
        cause = signal.Signals(callback.received[0]).name if callback.received else "another rank's signal"
        raise Preempted(f"stopped on {cause} after saving a checkpoint; rerun the same command to resume")
