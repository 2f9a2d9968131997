"""Putting a checkpoint's weights back into the trainer's model before `trainer.train(resume_from_checkpoint=...)`.

transformers 5 saves Qwen2-VL / Qwen2.5-VL checkpoints in the hub's key layout (`model.layers.*`,
`visual.*`), while the Trainer's resume loads the file raw into the model's own layout
(`model.language_model.*`, `model.visual.*`) with strict=False: no key matches, it only warns, and
training silently continues from the init weights. from_pretrained maps the keys; the weights it loads
are copied into the trainer's model (strictly: every key must match), and the Trainer's own weight loading
is skipped. The Trainer still restores the optimizer, scheduler, RNG states and step count.

LoRA checkpoints hold adapters only, which the Trainer loads through peft itself; nothing to do here.

A checkpoint at (or past) the run's max_steps is the end of training: transformers' loop, resumed at
global_step == max_steps, runs one more step before it checks the limit (a run preempted during its final
evaluation would train step max_steps + 1 on its rerun). Such a checkpoint is restored without train():
its weights (adapters too) and its TrainerState (global_step, log_history), so the run's record (train/steps,
history) is the unbroken run's.
"""

from __future__ import annotations

from peft import PeftModel
from transformers import AutoModelForImageTextToText, TrainerState


def restore_checkpoint_weights(trainer, checkpoint: str) -> None:
    """Loads ``checkpoint``'s weights into trainer.model (full fine-tuning), leaving the reference model and
    everything else the trainer built from the init untouched."""
    model = trainer.model
    if isinstance(model, PeftModel):
        return
    dtype = next(model.parameters()).dtype
    saved = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=dtype)
    model.load_state_dict(saved.state_dict(), strict=True)
    del saved
    # The weights are in place: the Trainer's raw load would only warn about every key (see above).
    trainer._load_from_checkpoint = lambda *args, **kwargs: None


def training_finished_at(checkpoint: str, max_steps: int) -> bool:
    """Whether resuming from ``checkpoint`` has nothing left to train (its step is at or past max_steps)."""
    state = TrainerState.load_from_json(f"{checkpoint}/trainer_state.json")
    return state.global_step >= max_steps


def restore_finished_training(trainer, checkpoint: str) -> None:
    """Puts a final checkpoint's weights and TrainerState into the trainer instead of calling train() (see the
    module docstring); call restore_checkpoint_weights first. The Trainer's own load does LoRA adapters (full
    fine-tuning's was made a no-op by restore_checkpoint_weights)."""
    trainer._load_from_checkpoint(checkpoint)
    trainer.state = TrainerState.load_from_json(f"{checkpoint}/trainer_state.json")
