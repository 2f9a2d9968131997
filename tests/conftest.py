"""Shared fixtures: Hydra composition and one small tiny-model cache per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

# Small budgets for the tiny inits and the run, so tests take seconds, not minutes.
SMALL_TINY = [
    "tiny_model.pretrain.examples=800",
    "tiny_model.pretrain.steps=100",
    "tiny_model.pretrain.batch_size=16",
    "tiny_model.instruct.examples=400",
    "tiny_model.instruct.steps=100",
    "tiny_model.instruct.batch_size=16",
]
SMALL_RUN = [
    "dataset.train_size=32",
    "dataset.test_size=16",
    "method.max_steps=2",
    "method.per_device_train_batch_size=16",
    "method.num_generations=4",
    "method.logging_steps=1",
    "wandb.mode=disabled",
]


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> str:
    """A cache directory holding the small tiny base and instruct, built once per session."""
    from medvqa_rl.models.tiny_inits import tiny_checkpoint

    cache = tmp_path_factory.mktemp("tiny_cache")
    cfg = compose_config(SMALL_TINY)
    tiny_checkpoint("instruct", OmegaConf.to_container(cfg.tiny_model, resolve=True), cache)
    return str(cache)


@pytest.fixture
def small_cfg(tiny_cache) -> DictConfig:
    return compose_config(SMALL_TINY + SMALL_RUN + [f"cache_dir={tiny_cache}"])
