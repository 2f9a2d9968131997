"""vLLM rollouts as an option: method.use_vllm / vllm_mode / vllm_gpu_memory_utilization reach TRL's GRPOConfig,
and use_vllm without vLLM installed (or with a mode TRL does not know) fails before any data or model is loaded,
naming the key."""

from __future__ import annotations

import importlib.util

import pytest

import medvqa_rl.config_checks as config_checks
from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.run import run
from medvqa_rl.training.grpo import grpo_config

from .conftest import compose_config


def _pretend_vllm(monkeypatch, installed: bool):
    """find_spec('vllm') as if vLLM were (not) installed; every other module as it is."""
    real = importlib.util.find_spec
    fake = object() if installed else None
    monkeypatch.setattr(config_checks.importlib.util, "find_spec",
                        lambda name, *a, **k: fake if name == "vllm" else real(name, *a, **k))


def test_vllm_is_off_by_default_and_trl_generates(tmp_path):
    args = grpo_config(compose_config([]), str(tmp_path), report_to="none")
    assert (args.use_vllm, args.vllm_mode, args.vllm_gpu_memory_utilization) == (False, "colocate", 0.3)


@pytest.mark.parametrize("mode,fraction", [("colocate", 0.45), ("server", 0.3)])
def test_vllm_flags_reach_grpo_config(mode, fraction, tmp_path):
    cfg = compose_config(["method.use_vllm=true", f"method.vllm_mode={mode}",
                          f"method.vllm_gpu_memory_utilization={fraction}"])
    args = grpo_config(cfg, str(tmp_path), report_to="none")
    assert (args.use_vllm, args.vllm_mode, args.vllm_gpu_memory_utilization) == (True, mode, fraction)
    # the importance-sampling correction of vLLM's rollouts is set by us, not left to TRL's default
    assert (args.vllm_importance_sampling_correction, args.vllm_importance_sampling_mode,
            args.vllm_importance_sampling_clip_max) == (True, "sequence_mask", 3.0)


@pytest.mark.parametrize("overrides,key,installed", [
    (["method.use_vllm=true"], "method.use_vllm", False),
    (["method.use_vllm=true", "method.vllm_mode=remote"], "method.vllm_mode", True),
    (["method.use_vllm=true", "method.vllm_gpu_memory_utilization=0"], "method.vllm_gpu_memory_utilization", True),
    (["method.use_vllm=true", "method.vllm_gpu_memory_utilization=1.5"], "method.vllm_gpu_memory_utilization", True),
])
def test_bad_vllm_settings_fail_before_loading(overrides, key, installed, tmp_path, monkeypatch):
    import medvqa_rl.run as run_module

    def must_not_load(*args, **kwargs):
        raise AssertionError("data or model was loaded before the config was checked")

    monkeypatch.setattr(run_module, "load_run_data", must_not_load)
    monkeypatch.setattr(run_module, "load_init", must_not_load)
    _pretend_vllm(monkeypatch, installed)
    cfg = compose_config(overrides + ["wandb.mode=disabled", f"cache_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as error:
        run(cfg, tmp_path / "run")
    if key == "method.use_vllm":
        assert "not installed" in str(error.value) and "docs/paper_setting.md" in str(error.value)


def test_vllm_settings_pass_when_vllm_is_installed(monkeypatch):
    _pretend_vllm(monkeypatch, installed=True)
    for mode in ("colocate", "server"):
        check_config(compose_config(["method.use_vllm=true", f"method.vllm_mode={mode}"]))


def test_use_vllm_on_a_baseline_is_not_checked():
    """SFT / DPO do not generate rollouts: their method group has no vLLM keys and nothing to check."""
    check_config(compose_config(["method=sft_full"]))
