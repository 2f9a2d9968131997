"""The policy objective as a factor (issue 38): each bias option's TRL knobs reach GRPOConfig as its paper sets them,
method.beta is an axis, and a knob that cannot mean what its objective says is refused before loading, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import MissingConfigException

from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.training.grpo import grpo_config
from medvqa_rl.training.objectives import LOSS_TYPES

from .conftest import CONF_DIR, compose_config

OBJECTIVES = sorted(p.stem for p in (Path(CONF_DIR) / "bias").glob("*.yaml") if not p.stem.startswith("_"))
KNOBS = ("loss_type", "scale_rewards", "importance_sampling_level", "epsilon", "epsilon_high", "delta", "loss_knobs")

# (loss_type, importance_sampling_level, epsilon, epsilon_high as GRPOConfig gets it, delta, scale_rewards)
EXPECTED = {
    "grpo": ("grpo", "token", 0.2, 0.2, None, "group"),
    "dr_grpo": ("dr_grpo", "token", 0.2, 0.2, None, "none"),
    "dapo": ("dapo", "token", 0.2, 0.28, None, "group"),  # DAPO's clip-higher
    "gspo": ("grpo", "sequence", 3e-4, 4e-4, None, "group"),  # GSPO: sequence ratio, its narrow clip
    "bnpo": ("bnpo", "token", 0.2, 0.2, None, "group"),
    "cispo": ("cispo", "token", 0.2, 5.0, None, "group"),  # the weight's absolute cap
    "sapo": ("sapo", "token", 0.2, None, None, "group"),
    "luspo": ("luspo", "sequence", 3e-4, 4e-4, None, "group"),
    "vespo": ("vespo", "token", 0.2, None, None, "group"),
}


def test_the_objectives_are_every_loss_trl_runs_plus_gspo():
    assert set(OBJECTIVES) == set(EXPECTED)
    assert {compose_config([f"bias={o}"]).bias.loss_type for o in OBJECTIVES} == set(LOSS_TYPES)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_states_every_knob_and_reaches_grpo_config(objective, tmp_path):
    cfg = compose_config([f"bias={objective}"])
    assert set(KNOBS) <= set(cfg.bias), "every knob explicit, none left to TRL's default"
    check_config(cfg)
    args = grpo_config(cfg, str(tmp_path), report_to="none")
    got = (args.loss_type, args.importance_sampling_level, args.epsilon, args.epsilon_high, args.delta,
           args.scale_rewards)
    assert got == pytest.approx(EXPECTED[objective])
    assert args.beta == 0.1
    for knob, value in cfg.bias.loss_knobs.items():
        assert getattr(args, knob) == value


def test_the_losses_own_knobs_are_explicit(tmp_path):
    sapo = grpo_config(compose_config(["bias=sapo"]), str(tmp_path), report_to="none")
    assert (sapo.sapo_temperature_pos, sapo.sapo_temperature_neg) == (1.0, 1.05)
    vespo = grpo_config(compose_config(["bias=vespo"]), str(tmp_path), report_to="none")
    assert (vespo.vespo_k_pos, vespo.vespo_lambda_pos, vespo.vespo_k_neg, vespo.vespo_lambda_neg) == (2.0, 3.0, 3.0, 2.0)


@pytest.mark.parametrize("beta", [0.0, 0.04, 0.4])
def test_beta_is_an_axis(beta, tmp_path):
    cfg = compose_config(["sweep=kl", f"method.beta={beta}"])
    check_config(cfg)
    assert grpo_config(cfg, str(tmp_path), report_to="none").beta == beta


@pytest.mark.parametrize("overrides,key", [
    (["bias=gspo", "method.objective.importance_sampling_level=token"], "method.objective.importance_sampling_level"),
    (["bias=gspo", "bias.importance_sampling_level=token"], "bias.importance_sampling_level"),
    (["bias=luspo", "bias.importance_sampling_level=token"], "bias.importance_sampling_level"),
    (["bias=vespo", "bias.importance_sampling_level=sequence"], "bias.importance_sampling_level"),
    (["bias=dapo", "bias.importance_sampling_level=sequence"], "bias.importance_sampling_level"),
    (["bias=grpo", "bias.importance_sampling_level=tokens"], "bias.importance_sampling_level"),
    (["method.beta=-0.1"], "method.beta"),
    (["bias.loss_type=ppo"], "bias.loss_type"),
    (["bias=cispo", "bias.epsilon_high=0.28"], "bias.epsilon_high"),  # a clip width where cispo wants a cap
    (["bias=cispo", "bias.delta=2.0"], "bias.delta"),
    (["bias=sapo", "bias.epsilon_high=0.28"], "bias.epsilon_high"),
    (["bias=vespo", "method.objective.delta=1.5"], "method.objective.delta"),
    (["bias=dapo", "bias.epsilon=1.2"], "bias.epsilon"),
    (["bias=grpo", "bias.delta=1.1"], "bias.delta"),
    (["bias=sapo", "bias.loss_knobs.sapo_temperature_neg=0"], "bias.loss_knobs.sapo_temperature_neg"),
    (["bias=grpo", "+bias.loss_knobs.sapo_temperature_neg=1.0"], "bias.loss_knobs.sapo_temperature_neg"),
])
def test_bad_objective_is_refused_before_loading_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(compose_config(overrides))


def test_an_unknown_objective_is_refused_at_composition_naming_the_group():
    with pytest.raises(MissingConfigException, match="bias/ppo"):
        compose_config(["bias=ppo"])


def test_default_objective_is_unchanged(tmp_path):
    """bias=grpo gives GRPOConfig what it got before the objectives were a factor (epsilon_high now explicit: the
    same 0.2 TRL filled in from epsilon)."""
    args = grpo_config(compose_config([]), str(tmp_path), report_to="none")
    assert (args.loss_type, args.scale_rewards, args.beta, args.importance_sampling_level, args.epsilon,
            args.delta, args.use_bias_correction_kl) == ("grpo", "group", 0.1, "token", 0.2, None, False)
    assert (args.epsilon_high or args.epsilon) == 0.2


def test_the_objectives_study_makes_the_clips_act():
    """sweep=objectives takes two passes per generated batch (at one the ratio is 1 and the clip-based objectives
    give one gradient); the command line can still ask for the on-policy grid."""
    from medvqa_rl.config_checks import check_config

    cfg = compose_config(["sweep=objectives", "bias=dapo"])
    assert cfg.method.num_iterations == 2
    check_config(cfg)
    assert compose_config(["sweep=objectives", "method.num_iterations=1"]).method.num_iterations == 1
    assert compose_config(["sweep=bias"]).method.num_iterations == 1  # the bias study stays on-policy
