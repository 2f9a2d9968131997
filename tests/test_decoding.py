"""Decoding comes from our config, whatever a checkpoint's generation_config.json says: the evaluation's greedy
answers and GRPO's rollouts are the same for a checkpoint that ships an instruct release's sampling values and
penalties as for one that ships none (medvqa_rl/decoding.py)."""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig, set_seed

from medvqa_rl.data.splits import load_splits
from medvqa_rl.data.synthetic import make_split
from medvqa_rl.decoding import TOKEN_IDS, OwnDecodingCallback, own_generation_config
from medvqa_rl.models.generation import end_of_turn_ids, generate_greedy
from medvqa_rl.models.loading import load_init
from medvqa_rl.prompts import prompt_conversation
from medvqa_rl.training.grpo import build_grpo_trainer, reward_functions

from .conftest import ONE_STEP_RUN, compose_config

# What Qwen's instruct releases put in generation_config.json: Qwen2.5-Instruct's sampling values and
# penalty, and Qwen2-VL-Instruct's near-greedy ones.
INSTRUCT_RELEASES = {
    "qwen2.5-instruct": dict(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05),
    "qwen2-vl-instruct": dict(do_sample=True, temperature=0.01, top_p=0.001, top_k=1, repetition_penalty=1.05),
}
# Penalties strong enough to change what the tiny model writes when generate() is left to read them (1.05 is too
# mild for its peaked logits), so the tests below would fail on a decoder that inherits them.
VISIBLE = dict(repetition_penalty=1.3, no_repeat_ngram_size=2, min_p=0.2, typical_p=0.5)


@pytest.fixture(scope="module")
def instruct():
    model, processor, _ = load_init(compose_config([]))  # the shipped tiny instruct: loads in a second
    return model, processor


def _with_checkpoint_config(model, **knobs) -> GenerationConfig:
    """A generation_config as a checkpoint would ship it: the model's token ids plus ``knobs``."""
    saved = model.generation_config
    return GenerationConfig(**{key: getattr(saved, key) for key in TOKEN_IDS if getattr(saved, key) is not None},
                            **knobs)


def _left_to_the_checkpoint(model, processor, records, max_new_tokens) -> list[str]:
    """The old evaluation call: only do_sample=False named, every other knob read from the checkpoint."""
    inputs = processor.apply_chat_template([prompt_conversation(r["question"], r["options"], r["image"]) for r in records],
                                           tokenize=True, add_generation_prompt=True, return_dict=True,
                                           return_tensors="pt", processor_kwargs={"padding": True, "padding_side": "left"})
    stop = sorted(set(model.generation_config.eos_token_id) | set(end_of_turn_ids(processor)))
    with torch.no_grad():
        generated = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=stop)
    rows = generated[:, inputs["input_ids"].shape[1]:].tolist()
    return [processor.tokenizer.decode([t for t in row if t not in stop], skip_special_tokens=True) for row in rows]


def test_evaluation_decodes_the_same_whatever_the_checkpoints_generation_config(instruct):
    model, processor = instruct
    records = make_split("test", 16, seed=0)
    clean = generate_greedy(model, processor, records, 16, 20)
    saved = model.generation_config
    try:
        for knobs in [*INSTRUCT_RELEASES.values(), {**INSTRUCT_RELEASES["qwen2.5-instruct"], **VISIBLE}]:
            model.generation_config = _with_checkpoint_config(model, **knobs)
            assert generate_greedy(model, processor, records, 16, 20) == clean, knobs
            assert model.generation_config.repetition_penalty == knobs["repetition_penalty"]  # restored after
        # The test has teeth: left to the checkpoint, the visible penalties change the completions.
        inherited = _left_to_the_checkpoint(model, processor, records, 20)
        assert inherited != [text for text, _ in clean]
    finally:
        model.generation_config = saved


def test_eval_generation_settings_are_applied(instruct):
    """eval.generation is the decoder: a setting there changes the completions (no_repeat_ngram_size here)."""
    model, processor = instruct
    records = make_split("test", 16, seed=0)
    cfg = compose_config([])
    default = generate_greedy(model, processor, records, 16, 20, generation=cfg.eval.generation)
    assert default == generate_greedy(model, processor, records, 16, 20)  # the config states the code's default
    blocked = generate_greedy(model, processor, records, 16, 20,
                              generation={**cfg.eval.generation, "no_repeat_ngram_size": 2})
    assert blocked != default


def test_own_generation_config_keeps_only_token_ids(instruct):
    model, _ = instruct
    saved = model.generation_config
    try:
        model.generation_config = _with_checkpoint_config(model, **VISIBLE, max_length=7)
        own = own_generation_config(model, do_sample=False, top_k=None)
        assert own.eos_token_id == saved.eos_token_id and own.pad_token_id == saved.pad_token_id
        assert own.do_sample is False
        for key in (*VISIBLE, "max_length", "top_k", "temperature"):
            assert getattr(own, key) is None, key  # unset: generate() takes transformers' default, not the checkpoint's
    finally:
        model.generation_config = saved


def _first_rollout(cfg, output_dir, checkpoint_knobs: dict | None,
                   keep_callback: bool = True) -> tuple[list[list[int]], dict]:
    """The completion ids of a one-step GRPO run's rollout, and the generation_config the model keeps after."""
    model, processor, _ = load_init(cfg)
    if checkpoint_knobs is not None:
        model.generation_config = _with_checkpoint_config(model, **checkpoint_knobs)
    train, _ = load_splits(cfg.dataset)
    set_seed(cfg.seed)
    trainer = build_grpo_trainer(cfg, model, processor, reward_functions(cfg, processor.tokenizer), train,
                                 str(output_dir), report_to="none")
    if not keep_callback:
        trainer.remove_callback(OwnDecodingCallback)
    rollouts, generate = [], model.generate

    def recording_generate(*args, **kwargs):
        output = generate(*args, **kwargs)
        rollouts.append(output[:, kwargs["input_ids"].shape[1]:].tolist())
        return output

    model.generate = recording_generate
    trainer.train()
    return rollouts[0], model.generation_config.to_diff_dict()


def test_grpo_rollouts_take_every_knob_from_our_config(tmp_path):
    """TRL's rollout GenerationConfig names temperature, top_p, top_k, repetition_penalty (and min_p, None by
    default); transformers fills the rest from the checkpoint unless OwnDecodingCallback leaves only token ids."""
    cfg = compose_config(ONE_STEP_RUN + ["method.max_completion_length=16", "method.save_steps=null"])
    clean, _ = _first_rollout(cfg, tmp_path / "clean", None)
    instruct_like = {**INSTRUCT_RELEASES["qwen2.5-instruct"], **VISIBLE}
    rollout, kept = _first_rollout(cfg, tmp_path / "instruct", instruct_like)
    assert rollout == clean
    assert kept["repetition_penalty"] == 1.3 and kept["no_repeat_ngram_size"] == 2  # restored: the saved model keeps its own
    inherited, _ = _first_rollout(cfg, tmp_path / "inherited", instruct_like, keep_callback=False)
    assert inherited != clean  # without the callback the checkpoint's min_p, typical_p and n-gram block reach the rollouts
