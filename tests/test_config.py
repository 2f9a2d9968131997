"""Every config option composes; bad values fail before any model is loaded, naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.factors import RECORDED_GROUPS
from medvqa_rl.run import run
from medvqa_rl.tracking import factor_choices
from medvqa_rl.training.common import examples_per_step, max_steps

from .conftest import CONF_DIR, compose_config

GROUPS = RECORDED_GROUPS


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml") if not p.stem.startswith("_"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes(group, option):
    cfg = compose_config([f"{group}={option}"])
    assert cfg[group].name == option
    check_config(cfg)


@pytest.mark.parametrize("judge", options("judge"))
def test_every_judge_composes_under_the_semantic_reward(judge, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cfg = compose_config(["reward=semantic", f"judge={judge}"])
    assert factor_choices(cfg)["judge"] == judge
    check_config(cfg)


@pytest.mark.parametrize("family,base,instruct", [("qwen2_vl_2b", "Qwen/Qwen2-VL-2B", "Qwen/Qwen2-VL-2B-Instruct"),
                                                  ("tiny", None, None)])
def test_model_init_picks_the_family_checkpoint(family, base, instruct):
    assert compose_config([f"family={family}", "model_init=base"]).model_init.path == base
    assert compose_config([f"family={family}", "model_init=instruct"]).model_init.path == instruct


def test_defaults_compose_the_embedded_run():
    cfg = compose_config()
    assert [cfg[g].name for g in GROUPS] == ["instruct", "accuracy", "none", "grpo", "tiny", "synthetic", "grpo",
                                             "think"]
    assert cfg.model_init.path is None  # the embedded tiny model


def test_default_budgets_see_the_same_questions():
    """The README's matched budget: each training method's default max_steps shows the same number of questions
    (method=none trains nothing)."""
    seen = {}
    for method in set(options("method")) - {"none"}:
        cfg = compose_config([f"method={method}"])
        seen[method] = max_steps(cfg) * examples_per_step(cfg.method)
    assert len(set(seen.values())) == 1, seen


def test_unknown_override_is_a_hydra_error():
    with pytest.raises(ConfigCompositionException):
        compose_config(["method.no_such_key=1"])
    with pytest.raises(ConfigCompositionException):
        compose_config(["bias=no_such_option"])


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["method.num_generations=3"], "method.num_generations"),
        (["method.num_generations=1", "method.per_device_train_batch_size=8"], "method.num_generations"),
        (["dataset.train_size=0"], "dataset.train_size"),
        (["dataset.test_size=-5"], "dataset.test_size"),
        (["dataset=vqa_rad", "dataset.questions=both"], "dataset.questions"),
        (["model_init.path=/no/such/checkpoint"], "model_init.path"),
        (["model_init.path=./relative/missing"], "model_init.path"),
        (["family=qwen2_5_vl_3b", "model_init=base"], "family.base"),
        (["length_reward=ecr", "length_reward.functions.ecr.target_fraction=0"], "length_reward.functions.ecr.target_fraction"),
        (["length_reward=cwr", "length_reward.functions.cwr.target_fraction=-0.5"], "length_reward.functions.cwr.target_fraction"),
        (["length_reward=cwr", "length_reward.functions.cwr.target_fraction=1.5"], "length_reward.functions.cwr.target_fraction"),
        (["length_reward=ecr", "+length_reward.functions.ecr.target_length=8"], "length_reward.functions.ecr"),
        (["length_reward=ecr", "length_reward.functions.ecr.target_fraction=null",
          "+length_reward.functions.ecr.target_length=30"], "length_reward.functions.ecr.target_length"),
        (["+method.objective.no_such_knob=1"], "method.objective.no_such_knob"),
        (["model_init.dtype=float64"], "model_init.dtype"),
        (["model_init.attn_implementation=flash_attention_2"], "model_init.attn_implementation"),
        (["model_init.attn_implementation=fast"], "model_init.attn_implementation"),
        (["model_init.max_pixels=0"], "model_init.max_pixels"),
        (["dataset=vqa_rad", "eval_judge=rule"], "eval.judge"),
        (["eval_judge=openai", "eval.judge.api_key_env=MEDVQA_TEST_UNSET_KEY"], "eval.judge.api_key_env"),
        (["reward=semantic", "judge.on_failure=ignore"], "judge.on_failure"),
        (["reward=semantic", "judge=openai", "judge.api_key_env=MEDVQA_TEST_UNSET_KEY"], "judge.api_key_env"),
        (["budget.examples=0"], "budget.examples"),
        (["method=dpo", "method.max_steps=0"], "method.max_steps"),
        (["method=sft_full", "method.trainer=ppo"], "method.trainer"),
    ],
)
def test_bad_values_fail_before_loading(overrides, key, tmp_path, monkeypatch):
    import medvqa_rl.run as run_module

    def must_not_load(*args, **kwargs):
        raise AssertionError("data or model was loaded before the config was checked")

    monkeypatch.setattr(run_module, "load_run_data", must_not_load)
    monkeypatch.setattr(run_module, "load_init", must_not_load)
    cfg = compose_config(overrides + ["wandb.mode=disabled", f"cache_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        run(cfg, tmp_path / "run")


def test_hub_id_is_not_mistaken_for_a_missing_path():
    check_config(compose_config(["model_init.path=Qwen/Qwen2-VL-2B-Instruct"]))


def test_cli_reports_unknown_override(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "medvqa_rl", "method.no_such_key=1", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "no_such_key" in result.stderr


@pytest.mark.parametrize("full_error", [False, True])
def test_cli_config_error_prints_its_message_alone(full_error, tmp_path):
    """A newcomer's config error reads like a tool's: the message, exit code 2, no traceback (unless
    HYDRA_FULL_ERROR=1 asks for it)."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "1" if full_error else "0", "WANDB_MODE": "disabled"}
    result = subprocess.run(
        [sys.executable, "-m", "medvqa_rl", "method.num_generations=3", f"hydra.run.dir={tmp_path}",
         "wandb.mode=disabled"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert result.returncode != 0
    assert "method.num_generations=3 must divide" in result.stderr
    assert ("Traceback" in result.stderr) == full_error, result.stderr
    if not full_error:
        assert result.returncode == 2
