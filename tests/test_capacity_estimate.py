"""benchmarks/capacity_estimate.py: its parameter counts equal models of the same shape built on the meta device
(no memory, no download), and the table follows from them (ZeRO shards what DDP replicates)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import MistralConfig, MistralForCausalLM, Qwen2VLConfig, Qwen2VLForConditionalGeneration

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import capacity_estimate as capacity  # noqa: E402


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())  # shared (tied) tensors once


def test_qwen2_vl_2b_count_matches_the_model_of_its_shape():
    text, vision = capacity.QWEN2_VL_2B["text"], capacity.QWEN2_VL_2B["vision"]
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=text["vocab"], hidden_size=text["hidden"], intermediate_size=text["intermediate"],
                         num_hidden_layers=text["layers"], num_attention_heads=text["heads"],
                         num_key_value_heads=text["kv_heads"], tie_word_embeddings=text["tied"]),
        vision_config=dict(depth=vision["depth"], embed_dim=vision["embed_dim"], hidden_size=vision["out_hidden"],
                           mlp_ratio=vision["mlp_ratio"], num_heads=16, patch_size=vision["patch"],
                           spatial_merge_size=vision["merge"], temporal_patch_size=vision["temporal_patch"],
                           in_channels=vision["channels"]),
        tie_word_embeddings=text["tied"])
    with torch.device("meta"):
        model = Qwen2VLForConditionalGeneration(config)
    assert capacity.qwen2_vl_params() == _params(model) == 2_208_985_600  # Qwen2-VL-2B's published size
    assert capacity.qwen2_vl_vision_params(vision) == _params(model.model.visual)


def test_biomistral_7b_count_matches_the_model_of_its_shape():
    shape = capacity.MISTRAL_7B
    with torch.device("meta"):
        model = MistralForCausalLM(MistralConfig(
            vocab_size=shape["vocab"], hidden_size=shape["hidden"], intermediate_size=shape["intermediate"],
            num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
            num_key_value_heads=shape["kv_heads"], tie_word_embeddings=shape["tied"]))
    assert capacity.decoder_params(shape) == _params(model)


def test_memory_rows_shard_what_ddp_replicates():
    policy, judge, gpus = 2_000_000_000, 7_000_000_000, 4
    rows = dict(capacity.memory_rows(policy, judge, gpus, rollout_gb=0.0))
    assert rows["policy weights"] == pytest.approx({"DDP": 8.0, "ZeRO-2": 4.0, "ZeRO-3": 1.0})
    assert rows["gradients"] == pytest.approx({"DDP": 8.0, "ZeRO-2": 1.0, "ZeRO-3": 1.0})
    assert rows["reference model (bf16)"] == pytest.approx({"DDP": 4.0, "ZeRO-2": 4.0, "ZeRO-3": 1.0})
    assert set(rows["judge BioMistral-7B (bf16)"].values()) == {14.0}  # one judge per process, never sharded
    total = rows["total, states and models"]
    assert total["DDP"] == pytest.approx(16 * 2 + 4 + 14) and total["DDP"] > total["ZeRO-2"] > total["ZeRO-3"]


def test_evaluation_time_scales_with_the_gpus_and_the_assumed_speeds():
    one = capacity.eval_minutes(7000, 1, 512, 32, hf_step_ms=30, vllm_tokens_per_s=5000)
    four = capacity.eval_minutes(7000, 4, 512, 32, hf_step_ms=30, vllm_tokens_per_s=5000)
    assert one["transformers generate"] == pytest.approx(219 * 512 * 0.030 / 60)  # 219 batches of 32
    assert one["vLLM"] == pytest.approx(7000 * 512 / 5000 / 60)
    assert four["vLLM"] == pytest.approx(one["vLLM"] / 4)


def test_the_script_prints_the_tables_marked_as_estimates():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "capacity_estimate.py"), "--gpus", "4"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("Computed estimates, not measurements.")
    assert "| GB per GPU (4 GPUs) | DDP | ZeRO-2 | ZeRO-3 |" in out and "| vLLM (5,000 tokens/s a GPU) |" in out


def test_the_docs_show_the_tables_the_script_prints():
    """docs/paper_setting.md#capacity-estimates is the script's output, not numbers typed by hand."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "capacity_estimate.py"), "--gpus", "4"],
                         capture_output=True, text=True, check=True).stdout
    table_lines = [line for line in out.splitlines() if line.startswith("|")]
    docs = (ROOT / "docs" / "paper_setting.md").read_text().splitlines()
    assert len(table_lines) > 10 and [line for line in table_lines if line not in docs] == []
