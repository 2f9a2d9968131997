"""The tiny base and instruct shipped with the package: used by the default config with no build, verified
file by file, and rebuilt from the recipe when the config differs (or on request)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from medvqa_rl.build_tiny import main as build_tiny_main
from medvqa_rl.data.synthetic import make_split
from medvqa_rl.models import tiny_inits
from medvqa_rl.models.init_probe import probe_init, probe_sampled
from medvqa_rl.models.loading import load_model_and_processor
from medvqa_rl.models.shipped_tiny import (
    BUILD_INFO,
    REBUILD_COMMAND,
    SHIPPED_DIR,
    ShippedCheckpointError,
    shipped_build_info,
    shipped_checkpoint,
)
from medvqa_rl.models.tiny_inits import PROBE_QUESTIONS, RECIPE_VERSION, cache_key, keyed_spec, tiny_checkpoint
from medvqa_rl.rewards import answer_letter, is_well_formed

from .conftest import compose_config

# The band the shipped instruct (and any rebuild of the recipe) must probe in, on held-out questions:
# it reasons right most of the time, and its letter follows that reasoning well under half the time.
REASONING_RIGHT_MIN = 70.0
LETTER_FOLLOWS_BAND = (15.0, 50.0)
# The band the shipped base's sampled format rate (at GRPO's rollout temperature, 0.5) must lie in: like a
# real base model it answers in format now and then, so GRPO from base has a format reward to act on.
BASE_FORMAT_BAND = (2.0, 40.0)


def default_spec(overrides: list[str] | None = None) -> dict:
    return OmegaConf.to_container(compose_config(overrides).family.build, resolve=True)


def test_default_config_loads_the_shipped_checkpoints_without_building(tmp_path):
    for stage in ("base", "instruct"):
        path = tiny_checkpoint(stage, default_spec(), tmp_path / "cache")
        assert path == SHIPPED_DIR / stage
        assert (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()
    assert not (tmp_path / "cache").exists()  # nothing built, nothing cached


def test_build_info_records_config_versions_and_probe():
    info = shipped_build_info()
    assert info["cache_key"] == cache_key(default_spec())
    assert info["recipe_version"] == RECIPE_VERSION
    assert info["family_build"] == keyed_spec(default_spec())
    assert {"torch", "transformers", "trl", "python"} <= set(info["versions"])
    assert {f"{stage}/model.safetensors" for stage in ("base", "instruct")} <= set(info["files"])
    probe = info["build"][f"instruct_probe_{PROBE_QUESTIONS}"]
    assert probe["reasoning_right"] >= REASONING_RIGHT_MIN
    assert LETTER_FOLLOWS_BAND[0] <= probe["letter_follows"] <= LETTER_FOLLOWS_BAND[1]
    base = info["build"][f"base_sampled_probe_{PROBE_QUESTIONS}x{tiny_inits.BASE_PROBE_SAMPLES}"]
    assert BASE_FORMAT_BAND[0] <= base["format_t0.5"] <= BASE_FORMAT_BAND[1], base


def test_shipped_files_stay_small():
    size = sum(p.stat().st_size for p in SHIPPED_DIR.rglob("*") if p.is_file())
    assert size < 20 * 2**20, f"shipped tiny checkpoints are {size / 2**20:.1f} MB"


def test_shipped_instruct_probes_in_the_band():
    model, processor = load_model_and_processor(str(SHIPPED_DIR / "instruct"))
    probe = probe_init(model, processor, make_split("probe", PROBE_QUESTIONS, seed=0))
    assert probe["format"] >= 95.0
    assert probe["reasoning_right"] >= REASONING_RIGHT_MIN, probe
    assert LETTER_FOLLOWS_BAND[0] <= probe["letter_follows"] <= LETTER_FOLLOWS_BAND[1], probe


@pytest.fixture
def shipped_copy(tmp_path) -> Path:
    root = tmp_path / "tiny_checkpoints"
    shutil.copytree(SHIPPED_DIR, root)
    return root


def test_truncated_safetensors_is_a_clear_error(shipped_copy):
    weights = shipped_copy / "instruct" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    key = cache_key(default_spec())
    with pytest.raises(ShippedCheckpointError, match="corrupt") as error:
        shipped_checkpoint("instruct", key, shipped_copy)
    assert str(weights) in str(error.value) and REBUILD_COMMAND in str(error.value)
    assert shipped_checkpoint("base", key, shipped_copy) == shipped_copy / "base"  # the intact stage still loads


def test_missing_file_is_a_clear_error(shipped_copy):
    (shipped_copy / "base" / "tokenizer.json").unlink()
    with pytest.raises(ShippedCheckpointError, match="missing") as error:
        shipped_checkpoint("base", cache_key(default_spec()), shipped_copy)
    assert str(shipped_copy / "base" / "tokenizer.json") in str(error.value)


def test_unreadable_build_info_is_a_clear_error(shipped_copy):
    (shipped_copy / BUILD_INFO).write_text("{not json")
    with pytest.raises(ShippedCheckpointError, match=BUILD_INFO):
        shipped_checkpoint("base", cache_key(default_spec()), shipped_copy)


@pytest.mark.parametrize("override", ["family.build.arch.text_layers=3", "family.build.seed=1",
                                      "family.build.instruct.slip_fraction=0.5"])
def test_another_tiny_config_builds_instead_of_loading_the_shipped(override, tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(tiny_inits, "_build", lambda spec, root: built.append(spec) or _fake_build(root))
    path = tiny_checkpoint("instruct", default_spec([override]), tmp_path)
    assert path.parent.parent == tmp_path and len(built) == 1


def _fake_build(root: Path) -> None:
    (root / "instruct").mkdir(parents=True)
    (root / "instruct" / "config.json").write_text("{}")


def test_slipped_letters_name_the_next_option_and_keep_the_reasoning():
    records = make_split("instruct", 400, seed=0)
    slipped = tiny_inits._slip_letters(records, 0.55, seed=0)
    moved = [(r, s) for r, s in zip(records, slipped) if r["answer_label"] != s["answer_label"]]
    assert 0.45 < len(moved) / len(records) < 0.65
    for r, s in moved:
        assert "ABCD".index(s["answer_label"]) == ("ABCD".index(r["answer_label"]) + 1) % 4
        assert s["rationale"] == r["rationale"] and s["answer_text"] == r["answer_text"]
    assert Counter(s["answer_label"] for _, s in moved)["A"] > 0  # D wraps round to A
    assert tiny_inits._slip_letters(records, 0.0, seed=0) == records


@pytest.mark.slow
def test_rebuilding_from_the_recipe_lands_in_the_same_band(tmp_path):
    """The recipe, run on this machine, gives a base and an instruct of the shipped kind (not byte-identical
    weights)."""
    build_tiny_main(["--ship", "--ship-dir", str(tmp_path / "rebuilt"), f"cache_dir={tmp_path / 'cache'}"])
    info = json.loads((tmp_path / "rebuilt" / BUILD_INFO).read_text())
    probe = info["build"][f"instruct_probe_{PROBE_QUESTIONS}"]
    assert info["cache_key"] == cache_key(default_spec())
    assert probe["reasoning_right"] >= REASONING_RIGHT_MIN, probe
    assert LETTER_FOLLOWS_BAND[0] <= probe["letter_follows"] <= LETTER_FOLLOWS_BAND[1], probe
    base = info["build"][f"base_sampled_probe_{PROBE_QUESTIONS}x{tiny_inits.BASE_PROBE_SAMPLES}"]
    assert BASE_FORMAT_BAND[0] <= base["format_t0.5"] <= BASE_FORMAT_BAND[1], base


def test_the_bases_documents_are_mostly_prose_and_sometimes_tagged_answers_in_words():
    records = make_split("pretrain", 600, seed=0)
    processor = load_model_and_processor(str(SHIPPED_DIR / "instruct"))[1]
    documents = tiny_inits._base_documents(records, processor, question_fraction=0.5, tagged_fraction=0.3, seed=0)
    captions = [d for d in documents if d.prompt == tiny_inits.CAPTION_PROMPT]
    exchanges = [(r, d) for r, d in zip(records, documents) if d.prompt != tiny_inits.CAPTION_PROMPT]
    tagged = [(r, d) for r, d in exchanges if "<think>" in d.target]
    assert 0.4 < len(exchanges) / len(records) < 0.6 and 0.2 < len(tagged) / len(exchanges) < 0.4
    assert not any("<think>" in d.target or "<answer>" in d.target for d in captions)
    for record, document in tagged:
        # In words, never a letter: the parser reads it as the option with that text, the right one.
        assert f"<answer>{record['answer_text']}</answer>" in document.target
        assert answer_letter(document.target, record["options"]) == record["answer_label"]
        assert is_well_formed(document.target.split("<|im_end|>")[0])
    for record, document in exchanges:  # the reply is about the finding asked
        assert record["question"] in document.prompt and record["answer_text"] in document.target


def test_the_shipped_base_samples_the_format_now_and_then():
    model, processor = load_model_and_processor(str(tiny_checkpoint("base", default_spec(), "/nonexistent")))
    records = make_split("test", 50, seed=0)
    sampled = probe_sampled(model, processor, records, samples=4, seed=0, temperatures=(0.5,))
    assert BASE_FORMAT_BAND[0] <= sampled["format_t0.5"] <= BASE_FORMAT_BAND[1], sampled
    assert 0 < sampled["accuracy_t0.5"]  # its in-format answers, in words, parse as options
    assert probe_init(model, processor, records)["format"] < BASE_FORMAT_BAND[1]  # mostly prose
