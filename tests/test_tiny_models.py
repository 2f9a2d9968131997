"""Tiny models: built from config, saved and loaded through from_pretrained, cached by their config."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation import generate_greedy
from medvqa_rl.models.loading import init_checkpoint, load_model_and_processor
from medvqa_rl.models.tiny_inits import cache_key, tiny_checkpoint
from medvqa_rl.models.tiny_vlm import TAG_TOKENS, build_model, build_processor, train_tokenizer

from .conftest import SMALL_TINY, compose_config


def test_tags_are_single_ordinary_tokens(tiny_cache):
    _, processor = load_model_and_processor(str(Path(tiny_cache).glob("tiny-*").__next__() / "instruct"))
    tokenizer = processor.tokenizer
    text = "<think>the scan is ct</think><answer>B</answer>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for tag in TAG_TOKENS:
        assert tokenizer.convert_tokens_to_ids(tag) in ids
    # skip_special_tokens must keep the tags, or the format reward could never fire.
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_both_inits_load_through_from_pretrained(tiny_cache):
    cfg = compose_config(SMALL_TINY)
    spec = OmegaConf.to_container(cfg.family.build, resolve=True)
    for stage in ("base", "instruct"):
        path = tiny_checkpoint(stage, spec, tiny_cache)
        assert (path / "config.json").exists() and (path / "processor_config.json").exists()
        model, processor = load_model_and_processor(str(path))
        assert isinstance(model, Qwen2VLForConditionalGeneration)
        assert processor.image_processor.patch_size == 8


def test_cache_is_reused_and_keyed_by_config(tiny_cache, tmp_path):
    cfg = compose_config(SMALL_TINY)
    spec = OmegaConf.to_container(cfg.family.build, resolve=True)
    before = sorted(Path(tiny_cache).iterdir())
    first = tiny_checkpoint("instruct", spec, tiny_cache)
    mtime = (first / "model.safetensors").stat().st_mtime
    assert tiny_checkpoint("instruct", spec, tiny_cache) == first
    assert (first / "model.safetensors").stat().st_mtime == mtime  # not rebuilt
    assert sorted(Path(tiny_cache).iterdir()) == before
    changed = OmegaConf.to_container(cfg.family.build, resolve=True)
    changed["arch"]["text_layers"] += 1
    assert cache_key(changed) != cache_key(spec)


def test_init_checkpoint_prefers_an_explicit_path_and_needs_no_build_for_a_real_family():
    assert init_checkpoint(compose_config(["model_init.path=Qwen/Qwen2-VL-2B-Instruct"])) == "Qwen/Qwen2-VL-2B-Instruct"
    real = compose_config(["family=qwen2_vl_2b"])
    assert "build" not in real.family
    assert init_checkpoint(real) == "Qwen/Qwen2-VL-2B-Instruct"


@pytest.mark.parametrize("family,cls", [("qwen2_vl", Qwen2VLForConditionalGeneration),
                                        ("qwen2_5_vl", Qwen2_5_VLForConditionalGeneration)])
def test_family_class_comes_from_saved_config(family, cls, tmp_path):
    """A tiny Qwen2.5-VL goes through the same save / from_pretrained / generate path."""
    cfg = compose_config([f"family.build.arch.family={family}"])
    records = make_split("test", 4, seed=0)
    tokenizer = train_tokenizer([r["question"] for r in records] * 5, vocab_size=300)
    processor = build_processor(tokenizer, 64, cfg.family.build.arch.patch_size, cfg.family.build.arch.merge_size)
    model = build_model(tokenizer, OmegaConf.to_container(cfg.family.build.arch), seed=0)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = load_model_and_processor(str(tmp_path))
    assert type(loaded) is cls
    outputs = generate_greedy(loaded, loaded_processor, records, batch_size=4, max_new_tokens=3)
    assert len(outputs) == 4 and all(n <= 3 for _, n in outputs)


def test_the_reasoning_formats_option_keeps_the_shipped_key_and_shares_the_replies():
    """family.build.instruct.reasoning_formats: [think] (the default) keys the build as before the option existed
    (the shipped checkpoints still load); sweep=reasoning's [think, none, after] is another build, a third of its
    replies in each layout, seeded."""
    import copy
    from collections import Counter

    from medvqa_rl.models.shipped_tiny import shipped_build_info
    from medvqa_rl.models.tiny_inits import _assign_formats

    spec = OmegaConf.to_container(compose_config([]).family.build, resolve=True)
    without = copy.deepcopy(spec)
    del without["instruct"]["reasoning_formats"]
    assert cache_key(spec) == cache_key(without) == shipped_build_info()["cache_key"]
    taught = OmegaConf.to_container(compose_config(["sweep=reasoning"]).family.build, resolve=True)
    assert taught["instruct"]["reasoning_formats"] == ["think", "none", "after"]
    assert cache_key(taught) != cache_key(spec)

    records = [{"id": i} for i in range(300)]
    assigned = _assign_formats(records, ["think", "none", "after"], seed=0)
    assert Counter(r["reasoning"] for r in assigned) == {"think": 100, "none": 100, "after": 100}
    assert assigned == _assign_formats(records, ["think", "none", "after"], seed=0)
    assert assigned != _assign_formats(records, ["think", "none", "after"], seed=1)
    assert {r["reasoning"] for r in _assign_formats(records, ["think"], seed=0)} == {"think"}
    with pytest.raises(KeyError, match="unknown reasoning format 'cot'"):
        _assign_formats(records, ["cot"], seed=0)


def test_an_unknown_taught_format_is_refused_and_an_untaught_one_is_said(caplog):
    from medvqa_rl.config_checks import ConfigError, check_config

    with pytest.raises(ConfigError, match=r"family\.build\.instruct\.reasoning_formats must list"):
        check_config(compose_config(["family.build.instruct.reasoning_formats=[think,cot]"]))
    with pytest.raises(ConfigError, match=r"family\.build\.instruct\.reasoning_formats must list"):
        check_config(compose_config(["model_init=base", "family.build.instruct.reasoning_formats=[]"]))
    with caplog.at_level("WARNING"):
        check_config(compose_config(["reasoning=none"]))
    assert "taught only think" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        check_config(compose_config(["reasoning=none", "sweep=reasoning"]))
    assert "taught only" not in caplog.text
