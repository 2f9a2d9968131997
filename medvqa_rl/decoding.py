"""Decoding settings that come from our config, never from a checkpoint's generation_config.json.

transformers' generate() fills every knob its GenerationConfig leaves unset (None) from the model's own
`generation_config` (GenerationMixin._prepare_generation_config, transformers 5), and checkpoints ship
decoding values there: Qwen's instruct releases a repetition_penalty of 1.05 and sampling values
(temperature, top_p, top_k), base releases other ones. Passing our settings is not enough, since any knob we do
not name (no_repeat_ngram_size, num_beams, min_p, typical_p, bad_words_ids, ...) would still come from the
checkpoint. So while we generate, the model's generation_config is replaced by `own_generation_config`: the
checkpoint's token ids and nothing else. Whatever our settings leave unset then falls back to transformers'
global defaults (greedy, no penalty, no filter), the same for every checkpoint.
"""

from __future__ import annotations

from contextlib import contextmanager

from transformers import GenerationConfig, TrainerCallback

# What a checkpoint may keep: which tokens start, pad and end a sequence, not how to choose the next one.
TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


def own_generation_config(model, **settings) -> GenerationConfig:
    """A GenerationConfig holding `model`'s token ids and `settings` (GenerationConfig fields; None values are
    left out), nothing else from the checkpoint."""
    checkpoint = _generating_model(model).generation_config
    tokens = {key: getattr(checkpoint, key) for key in TOKEN_IDS if getattr(checkpoint, key, None) is not None}
    return GenerationConfig(**tokens | {key: value for key, value in settings.items() if value is not None})


@contextmanager
def decoding_with(model, config: GenerationConfig):
    """`model` generates with `config` as its own generation_config inside the block; restored afterwards."""
    target = _generating_model(model)
    saved = target.generation_config
    target.generation_config = config
    try:
        yield config
    finally:
        target.generation_config = saved


class OwnDecodingCallback(TrainerCallback):
    """Training callback: the policy generates with only its token ids from the checkpoint (own_generation_config)
    for the whole of training, so every knob a trainer's GenerationConfig does not set comes from transformers'
    defaults (TRL's GRPO rollouts: temperature, top_p, top_k, min_p, repetition_penalty are ours, the rest would
    be the checkpoint's). The checkpoint's own is restored when training ends, so the saved model keeps it."""

    def __init__(self) -> None:
        self._decoding = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._decoding = decoding_with(model, own_generation_config(model))
        self._decoding.__enter__()

    def on_train_end(self, args, state, control, **kwargs):
        if self._decoding is not None:
            self._decoding.__exit__(None, None, None)
            self._decoding = None


def _generating_model(model):
    """The transformers model whose generate() reads the generation_config: under peft, the wrapped base model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
