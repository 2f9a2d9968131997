"""Cluster readiness on CPU: the model on its device and dtype at load, bad load settings rejected before
loading, the init evaluation computed once per init and reused, and a real 2-process (gloo) run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from medvqa_rl.run import run

from .conftest import ONE_STEP_RUN, SMALL_TINY, compose_config


def test_the_init_is_loaded_as_model_init_says(tiny_cache):
    from medvqa_rl.models.loading import load_init

    model, processor, _ = load_init(compose_config(SMALL_TINY + [
        f"cache_dir={tiny_cache}", "model_init.dtype=bfloat16", "model_init.attn_implementation=eager",
        "model_init.min_pixels=3136", "model_init.max_pixels=12544"]))
    assert model.dtype == torch.bfloat16 and model.config._attn_implementation == "eager"
    assert (processor.image_processor.size.shortest_edge, processor.image_processor.size.longest_edge) == (3136, 12544)
    assert model.device.type == "cpu"  # this process's device (a GPU rank's own cuda:N on a GPU machine)
    assert compose_config(["family=qwen2_vl_2b"]).model_init.dtype == "bfloat16"
    assert compose_config([]).model_init.dtype == "float32"


def _cached_run_cfg(cache_dir, *extra):
    return compose_config(SMALL_TINY + ONE_STEP_RUN + ["eval.similarity_model=null", f"cache_dir={cache_dir}", *extra])


def test_the_init_evaluation_is_computed_once_per_init_and_reused(tiny_cache, tmp_path):
    """Two arms from the same init: the second reuses the first's init metrics (init/cached). Another eval
    setting, or a changed checkpoint file, computes again."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache, cache)
    first = run(_cached_run_cfg(cache, "bias=grpo"), tmp_path / "a")
    second = run(_cached_run_cfg(cache, "bias=dr_grpo"), tmp_path / "b")
    assert (first["init/cached"], second["init/cached"]) == (False, True)
    init_keys = [k for k in first if k.startswith("init/test/")]
    assert init_keys and all(second[k] == first[k] for k in init_keys)
    assert (tmp_path / "b" / "init_predictions.jsonl").read_text() == (tmp_path / "a" / "init_predictions.jsonl").read_text()

    assert run(_cached_run_cfg(cache, "eval.batch_size=3"), tmp_path / "c")["init/cached"] is False
    (weights,) = Path(cache).glob("tiny-*/instruct/model.safetensors")
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # touched, same bytes
    assert run(_cached_run_cfg(cache, "bias=grpo"), tmp_path / "d")["init/cached"] is True  # keyed by content
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    save_file(tensors | {name: tensors[name] + 1e-3}, weights, metadata={"format": "pt"})  # the weights changed
    assert run(_cached_run_cfg(cache, "bias=grpo"), tmp_path / "e")["init/cached"] is False


@pytest.mark.slow  # two CLI runs, one of them with 2 processes: the slow tier
def test_two_cpu_processes_train_and_evaluate_once(tiny_cache, tmp_path):
    """`ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 -m medvqa_rl ...`: two gloo ranks really train
    (twice the examples and generated tokens per step of one process) and share the evaluation; every test
    question is scored once, and the record and the W&B run are written once."""
    args = [*SMALL_TINY, "dataset.train_size=16", "dataset.test_size=9", "method.max_steps=2",
            "method.per_device_train_batch_size=8", "method.num_generations=4", "method.max_completion_length=8",
            "method.logging_steps=1", "eval.similarity_model=null", "wandb.mode=offline", f"cache_dir={tiny_cache}",
            "test_sets=synthetic", "eval.test_sets.synthetic_ood.test_size=7"]  # an extra test set, sharded too
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    records = {}
    for processes in (1, 2):
        run_dir = tmp_path / f"p{processes}"
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"] if processes == 2
                    else [sys.executable])
        result = subprocess.run([*launcher, "-m", "medvqa_rl", *args, f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                                env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        records[processes] = json.loads((run_dir / "metrics.json").read_text())
        history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
        records[processes]["tokens_step_1"] = next(row["num_tokens"] for row in history if "num_tokens" in row)
        ids = [json.loads(line)["id"] for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
        assert sorted(ids) == sorted(set(ids)) and len(ids) == 9  # every test question, once
        ood_rows = (run_dir / "test_sets" / "synthetic_ood" / "predictions.jsonl").read_text().splitlines()
        ood = [json.loads(line)["id"] for line in ood_rows]
        assert sorted(ood) == sorted(set(ood)) and len(ood) == 7
        assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    one, two = records[1], records[2]
    assert (one["train/processes"], two["train/processes"]) == (1, 2)
    assert two["train/examples"] == 2 * one["train/examples"] and two["train/steps"] == one["train/steps"] == 2
    assert 1.6 < two["tokens_step_1"] / one["tokens_step_1"] < 2.4  # both ranks generated and trained
    for key in ("init/test/accuracy", "init/test/format_rate", "init/test/synthetic_ood/accuracy",
                "init/test/synthetic_ood/format_rate"):  # the sharded evaluation scores the same sets
        assert two[key] == one[key], key
