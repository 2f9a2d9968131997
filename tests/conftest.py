"""Shared fixtures: Hydra composition and one small tiny-model cache per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch thread per xdist worker (and per CLI run it starts): two workers on two cores, not four threads.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

# Small budgets for the tiny inits and the run, so tests take seconds, not minutes.
SMALL_TINY = [
    "family.build.pretrain.examples=800",
    "family.build.pretrain.steps=100",
    "family.build.pretrain.batch_size=16",
    "family.build.base_stage.steps=20",
    "family.build.instruct.examples=400",
    "family.build.instruct.steps=100",
    "family.build.instruct.batch_size=16",
]
SMALL_RUN = [
    "dataset.train_size=32",
    "dataset.test_size=16",
    "method.max_steps=2",
    "method.per_device_train_batch_size=16",
    "method.num_generations=4",
    "method.logging_steps=1",
    "wandb.mode=disabled",
    "test_sets=none",  # the in-domain split only; the extra test sets have their own tests (tests/test_test_sets.py)
]


# The smallest budget that still runs every stage of a run: 1 GRPO step of 2 prompts x 4 generations.
ONE_STEP_RUN = ["dataset.train_size=8", "dataset.test_size=4", "method.max_steps=1",
                "method.per_device_train_batch_size=8", "method.num_generations=4", "method.max_completion_length=8",
                "wandb.mode=disabled", "test_sets=none"]


def cli(args: list[str], cwd: Path, env: dict | None = None, module: str = "medvqa_rl") -> subprocess.CompletedProcess:
    """`python -m <module> args` in cwd, as a user runs it."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "WANDB_SILENT": "true", **(env or {})})


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> str:
    """A cache directory holding the small tiny base and instruct, one per test process.

    The models are built once per test command: under pytest-xdist the workers share one build folder (the
    build's own file lock lets the first build and the others wait), then each copies it into a cache of its own,
    so one worker's init-evaluation or dataset cache entries never meet another's tests.
    """
    from medvqa_rl.models.tiny_inits import built_root

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder every worker's basetemp sits in
    built = built_root(OmegaConf.to_container(compose_config(SMALL_TINY).family.build, resolve=True),
                       shared / "tiny_build")
    cache = tmp_path_factory.mktemp("tiny_cache")
    shutil.copytree(built, cache / built.name, ignore=shutil.ignore_patterns(".lock"))
    return str(cache)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A tiny GPT-2 judge built from config with a word-level tokenizer, saved like any hub checkpoint."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ("question reference reasoning consistent ? Yes No the lesions are at left right upper lower "
             "scan is ct where located").split()
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["<pad>", "<unk>"] + words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token="<pad>")
    torch.manual_seed(0)
    # 1024 positions: a judge prompt holds a template, a question and a whole reasoning.
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(fast), n_positions=1024, n_embd=32, n_layer=2, n_head=2,
                                       pad_token_id=0, eos_token_id=0, bos_token_id=0))
    path = tmp_path_factory.mktemp("tiny_judge")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture
def small_cfg(tiny_cache) -> DictConfig:
    return compose_config(SMALL_TINY + SMALL_RUN + [f"cache_dir={tiny_cache}"])
