"""Putting a checkpoint's weights back into the trainer's model before `trainer.train(resume_from_checkpoint=...)`.

transformers 5 saves Qwen2-VL / Qwen2.5-VL checkpoints in the hub's key layout (`model.layers.*`,
`visual.*`), while the Trainer's resume loads the file raw into the model's own layout
(`model.language_model.*`, `model.visual.*`) with strict=False: no key matches, it only warns, and
training silently continues from the init weights. from_pretrained maps the keys; the weights it loads
are copied into the trainer's model (strictly: every key must match), and the Trainer's own weight loading
is skipped. The Trainer still restores the optimizer, scheduler, RNG states and step count.

LoRA checkpoints hold adapters only, which the Trainer loads through peft itself; nothing to do here.
"""

from __future__ import annotations

from peft import PeftModel
from transformers import AutoModelForImageTextToText


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
