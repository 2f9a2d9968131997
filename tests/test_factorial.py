"""analysis/factorial.py on simulated factorials with known effects: a main effect and an interaction are found
against run-to-run noise, null effects are not, a single outlying cell is named, and bad designs (a missing cell,
seeds that cover only some cells, a metric with zero variance) give notes, never a traceback or a NaN verdict."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis.factorial import factorial_effects
from analysis.summary import factorial_sentences

FACTORS = ("model_init", "reward", "length_reward", "bias")
LEVELS = {"model_init": ("base", "instruct"), "reward": ("accuracy", "semantic"),
          "length_reward": ("cwr", "ecr", "none"), "bias": ("dr_grpo", "grpo")}
M = 400  # questions per run


def _sweep(seeds=(0,), main=0.0, interaction=0.0, run_sd=0.0, outlier=None, skip=(), tokens=None, rng_seed=0):
    """(runs frame, outcome reader) of a simulated factorial: accuracy = 50% + `main` points at base + `interaction`
    points at base x semantic + N(0, run_sd) per run, questions drawn per run; `outlier` (cell, points) shifts one
    cell's length; cells in `skip` ((cell, seed)) are not run; tokens: a constant completion length when given."""
    rng = np.random.default_rng(rng_seed)
    rows, outcomes = [], {}
    for seed in seeds:
        for cell in itertools.product(*LEVELS.values()):
            if (cell, seed) in skip or (cell, None) in skip:
                continue
            levels = dict(zip(FACTORS, cell, strict=True))
            p = 50 + main * (levels["model_init"] == "base") + interaction * (
                levels["model_init"] == "base" and levels["reward"] == "semantic") + rng.normal(0, run_sd)
            correct = rng.random(M) < p / 100
            length = 14.0 + rng.normal(0, 0.05) + (outlier[1] if outlier and cell == outlier[0] else 0.0)
            name = ",".join(f"{f}={v}" for f, v in levels.items()) + f",seed={seed}"
            rows.append({"run": name, "seed": seed, **levels})
            outcomes[name] = {"in-domain": {f"q{seed}-{i}": {
                "correct": bool(c), "completion_tokens": tokens if tokens is not None else length + rng.normal(0, 2)}
                for i, c in enumerate(correct)}}
    return pd.DataFrame(rows), outcomes.__getitem__


def _row(frame, contrast, metric="accuracy"):
    return frame[(frame["contrast"] == contrast) & (frame["metric"] == metric)].iloc[0]


def test_a_real_main_effect_and_interaction_are_resolved_and_the_nulls_are_not():
    runs, read = _sweep(seeds=(0, 1, 2), main=15.0, interaction=10.0, run_sd=2.0)
    frame = factorial_effects(runs, FACTORS, read)
    main = _row(frame, "base − instruct")
    assert main["effect"] == pytest.approx(15.0 + 10.0 / 2, abs=3)  # averaged over reward's two levels
    assert main["run_noise"].startswith("replicate seeds") and main["run_df"] == 72 - 24 - 2
    assert main["verdict"].startswith("higher: resolved against run-to-run noise")
    interaction = _row(frame, "(base − instruct) × (semantic − accuracy)")
    assert interaction["effect"] == pytest.approx(10.0, abs=4) and interaction["p_adjusted"] < 0.05
    nulls = frame[(frame["metric"] == "accuracy") & ~frame["contrast"].isin(
        ["base − instruct", "(base − instruct) × (semantic − accuracy)", "semantic − accuracy"])]
    assert (nulls["p_adjusted"] >= 0.05).all() and nulls["verdict"].str.startswith("not resolved").all()
    assert frame.attrs["seeds_per_cell"] == {3: 24}


def test_one_seed_uses_the_pooled_high_order_interactions_and_names_a_one_cell_outlier():
    reference = ("instruct", "accuracy", "none", "grpo")
    runs, read = _sweep(outlier=(reference, -4.0))
    frame = factorial_effects(runs, FACTORS, read)
    length = _row(frame, "semantic − accuracy", "completion_tokens")
    assert length["run_noise"] == "pooled 3-/4-way interactions, 9 df"
    assert length["one_cell"].startswith("instruct/accuracy/none/grpo: ")
    assert "driven by one cell (instruct/accuracy/none/grpo" in length["verdict"]
    assert any("Driven by one cell (completion_tokens)" in s for s in factorial_sentences(frame))


def test_a_null_factorial_at_one_seed_rarely_resolves_anything():
    """No true effect, run-to-run SD 3.4 points, one seed: the pooled-interaction test keeps its level."""
    resolved = []
    for rng_seed in range(8):
        runs, read = _sweep(run_sd=3.4, rng_seed=rng_seed)
        frame = factorial_effects(runs, FACTORS, read)
        resolved += list(frame.loc[frame["metric"] == "accuracy", "p_adjusted"] < 0.05)
    assert np.mean(resolved) <= 0.05


def test_a_missing_cell_and_a_partial_second_seed_are_said_not_fatal():
    missing = ("base", "semantic", "ecr", "dr_grpo")
    partial = [(cell, 1) for cell in itertools.product(*LEVELS.values()) if cell[0] == "base"]
    runs, read = _sweep(seeds=(0, 1), main=15.0, skip=[(missing, None), *partial])
    frame = factorial_effects(runs, FACTORS, read)
    assert frame.attrs["cells"] == (23, 24) and frame.attrs["missing"] == [missing]
    assert frame.attrs["seeds_per_cell"] == {1: 11, 2: 12}
    main = _row(frame, "base − instruct")
    # a missing cell: no saturated model; the two-way model's residual: 35 runs - 15 terms - 1 seed block
    assert main["run_noise"] == "pooled 3-/4-way interactions and replicate seeds, 19 df"
    assert main["effect"] == pytest.approx(15.0, abs=3) and isinstance(main["verdict"], str)
    assert frame["verdict"].notna().all() and not frame["verdict"].str.contains("nan").any()


def test_partial_replicate_seeds_give_the_pure_error_when_there_are_enough():
    partial = [(cell, s) for s in (1, 2) for cell in itertools.product(*LEVELS.values()) if cell[0] == "base"]
    runs, read = _sweep(seeds=(0, 1, 2), main=15.0, run_sd=2.0, skip=partial)
    main = _row(factorial_effects(runs, FACTORS, read), "base − instruct")
    assert main["run_noise"] == "replicate seeds, 22 df"  # 48 runs - 24 cells - 2 seed blocks


def test_a_metric_with_zero_variance_gets_a_note():
    runs, read = _sweep(tokens=12.0)
    frame = factorial_effects(runs, FACTORS, read)
    rows = frame[frame["metric"] == "completion_tokens"]
    assert (rows["effect"].abs() < 1e-9).all()
    assert rows["verdict"].str.startswith("not resolved").all() or rows["note"].str.contains("zero variance").all()
    assert not rows["verdict"].isna().any()
