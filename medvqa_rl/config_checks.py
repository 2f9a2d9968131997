"""Checks on the composed config that must fail before any data or model is loaded."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def check_config(cfg: DictConfig) -> None:
    """Raises ConfigError naming the first offending key."""
    for key in ("train_size", "test_size"):
        value = cfg.dataset.get(key)
        if value is not None and value <= 0:
            raise ConfigError(f"dataset.{key} must be a positive number of examples, got {value}")

    method = cfg.method
    if method.num_generations < 2:
        raise ConfigError(f"method.num_generations must be at least 2 (GRPO compares a group), got {method.num_generations}")
    batch = method.per_device_train_batch_size * method.gradient_accumulation_steps
    if batch % method.num_generations != 0:
        raise ConfigError(
            f"method.num_generations={method.num_generations} must divide the generation batch "
            f"method.per_device_train_batch_size * method.gradient_accumulation_steps = {batch}"
        )
    if method.max_steps <= 0:
        raise ConfigError(f"method.max_steps must be positive, got {method.max_steps}")

    path = cfg.model_init.path
    if path is not None and _looks_local(path) and not Path(path).expanduser().is_dir():
        raise ConfigError(f"model_init.path={path!r} does not exist (give a local checkpoint directory or a hub id)")


def _looks_local(path: str) -> bool:
    """Hub ids look like 'org/name'; anything absolute, relative-dotted or deeper is a local path."""
    return path.startswith(("/", ".", "~")) or path.count("/") != 1 or Path(path).expanduser().exists()
