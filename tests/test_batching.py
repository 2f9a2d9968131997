"""The paper overlay on any GPU count: 8 GRPO questions (32 SFT/DPO questions) per optimiser step whatever the number of
processes, a count that cannot give them refused; and a bf16 policy under plain DDP (or one process) at a learning
rate that rounds away refused, naming the key and the accelerate config that learns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from medvqa_rl.batching import accumulation_steps, matching_process_counts
from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.training import common

from .conftest import compose_config

PAPER = "experiment=paper_qwen2vl_2b_pmcvqa"


def _on(monkeypatch, processes: int, sharded: bool = True) -> None:
    """As `accelerate launch --num_processes N` announces it: WORLD_SIZE for composing, PartialState for training."""
    monkeypatch.setenv("WORLD_SIZE", str(processes))
    monkeypatch.setattr(common, "PartialState", lambda: SimpleNamespace(num_processes=processes))
    if sharded:
        monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    else:
        monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
        monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)


# (method, questions per step, optimiser steps for the 10K questions)
PAPER_BUDGETS = [("grpo", 8, 1250), ("sft_full", 32, 313), ("sft_lora", 32, 313), ("dpo", 32, 313)]


@pytest.mark.parametrize("processes", [1, 2, 4, 8])
@pytest.mark.parametrize(("method", "questions", "steps"), PAPER_BUDGETS)
def test_paper_overlay_keeps_its_questions_per_step_on_any_gpu_count(monkeypatch, processes, method, questions, steps):
    _on(monkeypatch, processes)
    cfg = compose_config([PAPER, f"method={method}"])
    check_config(cfg)
    per_question = 8 if method == "grpo" else 1
    assert cfg.method.gradient_accumulation_steps * cfg.method.per_device_train_batch_size * processes \
        == questions * per_question
    assert common.examples_per_step(cfg.method) == cfg.method.questions_per_step == questions
    assert common.max_steps(cfg) == steps  # one pass over the 10K questions, the same number of steps on every count
    assert common.batch_description(cfg.method).startswith(f"{questions} questions per optimiser step")


@pytest.mark.parametrize("processes", [3, 16])
def test_paper_overlay_refuses_a_gpu_count_that_cannot_keep_its_questions_per_step(monkeypatch, processes):
    _on(monkeypatch, processes)
    with pytest.raises(ConfigError, match=rf"method.questions_per_step=8 cannot be kept on {processes} processes.*"
                                          r"\[1, 2, 4, 8\]"):
        check_config(compose_config([PAPER]))


def test_an_explicit_accumulation_replaces_the_derived_one(monkeypatch):
    """gradient_accumulation_steps on the command line wins; the questions per step follow from it (and the record
    says how many: train/questions_per_step)."""
    _on(monkeypatch, 1)
    cfg = compose_config([PAPER, "method.gradient_accumulation_steps=2"])
    check_config(cfg)
    assert common.examples_per_step(cfg.method) == 2


def test_accumulation_arithmetic():
    assert accumulation_steps(8, 8, 8, 4) == 2 and accumulation_steps(8, 8, 8, 1) == 8
    assert accumulation_steps(8, 8, 8, 3) == pytest.approx(8 / 3) and accumulation_steps(8, 8, 8, 16) == 0.5
    assert matching_process_counts(8, 8, 8) == [1, 2, 4, 8]
    assert matching_process_counts(32, 1, 4) == [1, 2, 4, 8]


def test_the_embedded_default_keeps_its_own_accumulation(monkeypatch):
    _on(monkeypatch, 2, sharded=False)
    cfg = compose_config()
    check_config(cfg)
    assert cfg.method.questions_per_step is None and cfg.method.gradient_accumulation_steps == 1
    assert common.examples_per_step(cfg.method) == 2 * 64 // 8  # grows with the processes, as before


# --- bf16 weights outside DeepSpeed/FSDP ---------------------------------------------------------------------------

@pytest.mark.parametrize("processes", [1, 4])
@pytest.mark.parametrize("method", ["grpo", "sft_full", "dpo"])
def test_a_bf16_policy_under_plain_ddp_at_the_papers_learning_rate_is_refused(monkeypatch, processes, method):
    _on(monkeypatch, processes, sharded=False)
    cfg = compose_config([PAPER, f"method={method}"])
    with pytest.raises(ConfigError) as refused:
        check_config(cfg)
    message = str(refused.value)
    assert message.startswith(f"model_init.dtype=bfloat16 with method.learning_rate={cfg.method.learning_rate:g}")
    assert "accelerate_configs/deepspeed_zero2.yaml" in message and "model_init.dtype=float32" in message
    assert ("plain DDP over 4 processes" if processes == 4 else "one process") in message


@pytest.mark.parametrize("fix", [
    ["model_init.dtype=float32"],  # fp32 weights: the optimizer's steps survive
    ["method=sft_lora"],  # LoRA trains fp32 adapters
    ["method=none"],  # nothing trained
    ["method.learning_rate=1e-4"],  # a step above bf16's spacing around 0.02
])
def test_what_learns_under_plain_ddp_passes(monkeypatch, fix):
    _on(monkeypatch, 4, sharded=False)
    check_config(compose_config([PAPER, *fix]))


@pytest.mark.parametrize("flag", ["ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_FSDP"])
def test_deepspeed_and_fsdp_keep_fp32_master_weights_and_pass(monkeypatch, flag):
    _on(monkeypatch, 4, sharded=False)
    monkeypatch.setenv(flag, "true")
    check_config(compose_config([PAPER]))


def test_the_headline_launchers_default_to_zero2():
    """hydra/launcher=slurm_multigpu and sweeps/slurm_accelerate.sbatch start the paper overlay in a setting that
    learns (their own tests check the argv: tests/test_slurm_multigpu.py)."""
    root = Path(__file__).resolve().parents[1]
    assert "accelerate_config: accelerate_configs/deepspeed_zero2.yaml" in (
        root / "conf/hydra/launcher/slurm_multigpu.yaml").read_text()
    assert "ACCELERATE_CONFIG:-accelerate_configs/deepspeed_zero2.yaml" in (
        root / "sweeps/slurm_accelerate.sbatch").read_text()


# --- two gloo ranks on a CPU ---------------------------------------------------------------------------------------

@pytest.mark.slow  # two processes, each loading the tiny model and training one GRPO step of 64 completions
def test_two_gloo_ranks_train_the_papers_eight_questions_per_step(tiny_cache, tmp_path):
    """The paper overlay under torchrun on 2 CPU processes (only paths, sizes, fp32 and the completion length swapped
    for the tiny model): accumulation 4, 8 questions in the one optimiser step, as on 4 GPUs."""
    from .test_pmc_vqa import write_pmc_vqa

    root = write_pmc_vqa(tmp_path / "pmc", n_train=16, n_test=4)
    instruct = next(Path(tiny_cache).glob("tiny-*/instruct"))
    run_dir = tmp_path / "run"
    args = [PAPER, f"model_init.path={instruct}", f"dataset.path={root}", "dataset.train_size=16",
            "dataset.test_size=4", "budget.examples=8", "method.bf16=false", "model_init.dtype=float32",
            "method.max_completion_length=8", "method.gradient_checkpointing=false", "eval.judge_score=false",
            "eval.similarity_model=null", "eval.progress=false", "wandb.mode=disabled", f"cache_dir={tiny_cache}",
            f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "medvqa_rl",
                             *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert (record["train/processes"], record["train/gradient_accumulation_steps"]) == (2, 4)
    assert (record["train/questions_per_step"], record["train/steps"], record["train/examples"]) == (8, 1, 8)
    assert "8 questions per optimiser step (8 examples per process x 4 accumulation x 2 processes" in result.stdout + result.stderr
