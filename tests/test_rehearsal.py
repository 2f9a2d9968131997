"""The pieces of the real-size rehearsal (benchmarks/rehearsal.py) that need no 2B model: the prompt-budget config
check (a context that cannot hold the largest image's tokens plus the completion is refused, exactly at the
boundary the real processor gives), the paper overlay's pixel bounds, and the rehearsal's image-token counting on
figure-sized images in the PMC-VQA layout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image
from transformers import Qwen2VLImageProcessor

from medvqa_rl.config_checks import ConfigError, check_config

from .conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import rehearsal  # noqa: E402

PAPER = ["experiment=paper_qwen2vl_2b_pmcvqa", "wandb.mode=disabled", "model_init.dtype=float32"]  # one process: fp32
VLLM_CONTEXT = "+method.objective.vllm_max_model_length"


def processor_tokens(side: int, min_pixels: int, max_pixels: int) -> int:
    """Image tokens Qwen2-VL's own image processor (published settings) gives a side x side image."""
    processor = Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=min_pixels,
                                      max_pixels=max_pixels)
    grid = processor(images=Image.new("RGB", (side, side)), return_tensors="pt")["image_grid_thw"][0]
    return int(grid.prod()) // 4


@pytest.mark.parametrize(("side", "min_pixels", "max_pixels"), [
    (512, 3136, 401408),  # the overlay: 504 x 504 px, 324 tokens (max_pixels does not bind)
    (448, 3136, 401408),
    (1000, 3136, 401408),  # max_pixels binds
    (512, 3136, 100352),  # max_pixels binds (128 tokens at most)
    (40, 200704, 401408),  # min_pixels binds: a small figure is enlarged
])
def test_a_context_one_token_short_of_the_largest_image_plus_the_completion_is_refused(side, min_pixels, max_pixels):
    tokens = processor_tokens(side, min_pixels, max_pixels)
    completion = 512
    bounds = [*PAPER, f"dataset.max_image_side={side}", f"model_init.min_pixels={min_pixels}",
              f"model_init.max_pixels={max_pixels}", f"method.max_completion_length={completion}"]
    check_config(compose_config([*bounds, f"{VLLM_CONTEXT}={tokens + completion}"]))
    with pytest.raises(ConfigError, match=rf"vllm_max_model_length={tokens + completion - 1} cannot hold a prompt "
                                          rf"of {tokens} image tokens.*cut inside their image tokens"):
        check_config(compose_config([*bounds, f"{VLLM_CONTEXT}={tokens + completion - 1}"]))


def test_the_overlay_names_r1v_pixel_bounds_and_passes_the_check():
    cfg = compose_config(PAPER)
    assert (cfg.model_init.min_pixels, cfg.model_init.max_pixels) == (3136, 401408)
    assert cfg.dataset.max_image_side == 512 and cfg.family.context_length == 32768
    check_config(cfg)
    # the bounds survive a factor sweep's model_init=base and every method
    for extra in (["model_init=base"], ["method=sft_lora"], ["method=dpo"]):
        assert compose_config([*PAPER, *extra]).model_init.max_pixels == 401408


def test_the_checkpoints_own_bounds_and_no_side_cap_overflow_a_4k_vllm_window():
    """model_init.max_pixels=null keeps the checkpoint's 12845056 pixels: one unshrunk figure can be 16,384 tokens."""
    cfg = compose_config([*PAPER, "model_init.max_pixels=null", "dataset.max_image_side=null", f"{VLLM_CONTEXT}=4096"])
    with pytest.raises(ConfigError, match=r"cannot hold a prompt of 16384 image tokens.*lower model_init\.max_pixels"):
        check_config(cfg)
    check_config(compose_config([*PAPER, "model_init.max_pixels=null", f"{VLLM_CONTEXT}=4096"]))  # the side cap holds


def test_the_model_context_bounds_the_prompt_without_vllm():
    cfg = compose_config([*PAPER, "model_init.max_pixels=null", "dataset.max_image_side=null",
                          "family.context_length=16000"])
    with pytest.raises(ConfigError, match=r"family\.context_length=16000"):
        check_config(cfg)


def test_a_tiny_config_counts_its_own_patches():
    """The tiny model's image factor is patch_size 8 x merge 2 = 16 px: 64 x 64 images are 16 tokens."""
    check_config(compose_config(["wandb.mode=disabled"]))  # no pixel bound known: nothing to check
    tiny = ["wandb.mode=disabled", "model_init.max_pixels=4096", "method.max_completion_length=20"]
    check_config(compose_config([*tiny, f"{VLLM_CONTEXT}=36"]))  # 4096 / 256 = 16 tokens + 20
    with pytest.raises(ConfigError, match="16 image tokens"):
        check_config(compose_config([*tiny, f"{VLLM_CONTEXT}=35"]))


def test_figure_sized_fixture_and_image_token_counts(tmp_path):
    """The rehearsal's PMC-VQA fixture loads through the real loader (figures shrunk to max_image_side), and its
    token counts equal the processor's grid and the <|image_pad|> tokens of each rendered prompt (none cut)."""
    from medvqa_rl.data.splits import load_splits

    root = rehearsal.write_fixture(tmp_path / "pmc", n_train=4, n_test=4)
    sizes = {Image.open(p).size for p in (root / "images").iterdir()}
    assert max(max(s) for s in sizes) > 512  # figure-sized, larger than the loader's cap
    cfg = compose_config([*PAPER, f"dataset.path={root}", "dataset.train_size=4", "dataset.test_size=4",
                          "dataset.cache=false"])
    train, test = load_splits(cfg.dataset)
    assert max(max(r["image"].size) for r in test) <= 512
    processor = rehearsal.build_processor(min_pixels=3136, max_pixels=401408, tokenizer="tiny")
    stats = rehearsal.prompt_stats(processor, test)
    assert len(stats) == 4
    for record, row in zip(test, stats):
        width, height = record["image"].size
        assert row["image_tokens"] == processor_tokens_rect(width, height)
        assert row["image_pad_tokens"] == row["image_tokens"]  # not cut
        assert row["prompt_tokens"] > row["image_tokens"]
    summary = rehearsal.summarise([row["image_tokens"] for row in stats])
    assert summary["min"] <= summary["median"] <= summary["max"] <= 324


def processor_tokens_rect(width: int, height: int) -> int:
    processor = Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=3136,
                                      max_pixels=401408)
    grid = processor(images=Image.new("RGB", (width, height)), return_tensors="pt")["image_grid_thw"][0]
    return int(grid.prod()) // 4
