"""analysis/seed_level.py, the procedure that decides at 2+ seeds: its size under a simulated null with the seed
spread the studies show, its power against a real effect (matching analysis/detectable.py's noncentral t), and its
floor (never narrower than the question noise) and degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.detectable import Noise, minimum_detectable
from analysis.question_level import verdict
from analysis.seed_level import question_se, seed_level

SEED_SD = 3.4  # points: the between-seed SD of a paired effect the committed studies show
QUESTIONS = 1000


def _simulate(true_effect: float, seeds: int, replications: int, rng) -> list:
    """Per replication: each seed's arms answer QUESTIONS questions at 60% (+ the seed's own shift of the effect,
    SD SEED_SD points, + the true effect); returns seed_level's results on the per-question differences."""
    results = []
    for _ in range(replications):
        shift = rng.normal(true_effect, SEED_SD, seeds) / 100
        a = rng.random((seeds, QUESTIONS)) < (0.6 + shift)[:, None]
        b = rng.random((seeds, QUESTIONS)) < 0.6
        differences = 100.0 * (a.astype(float) - b)
        results.append(seed_level(differences.mean(axis=1), np.array([question_se(d) for d in differences])))
    return results


def test_a_simulated_null_is_rejected_at_most_about_five_percent_of_the_time():
    rng = np.random.default_rng(35)
    for seeds in (2, 3, 5):
        results = _simulate(0.0, seeds, 500, rng)
        rejected = np.mean([r.p_value < 0.05 for r in results])
        words = [verdict(r.effect, r.p_value, seeds) for r in results]
        assert rejected <= 0.07, (seeds, rejected)  # 5% + two Monte Carlo SEs
        assert np.mean(["resolved at" in w and "not resolved" not in w for w in words]) == rejected
        assert all(r.df == seeds - 1 for r in results)


def test_a_real_effect_of_the_detectable_size_is_found_about_as_often_as_the_power_says():
    truth = Noise(question_variance=2 * 0.24 * 1e4, seed_variance=SEED_SD**2, comparisons=1, pilot_seeds=3,
                  pilot_questions=QUESTIONS)  # two independent 60% arms: var(a - b) = 2 x 0.24, in points^2
    detectable = minimum_detectable(truth, 3, QUESTIONS)
    assert 13 < detectable < 16  # about twice the z approximation's 7.1 at this noise
    results = _simulate(detectable, 3, 500, np.random.default_rng(36))
    found = np.mean([r.p_value < 0.05 and r.effect > 0 for r in results])
    assert 0.7 <= found <= 0.86, found  # 80% power, less the modified Hartung-Knapp's bit of caution
    assert np.mean([r.low <= detectable <= r.high for r in results]) >= 0.93  # the interval covers the truth


def test_seeds_that_agree_too_well_still_get_the_question_noise_interval():
    """The issue's case: full SFT vs GRPO OOD, -9, -8, -6.6 with SE 2.4 each: a t over seed means gives +-0.57 x ..,
    the interval here is never narrower than the fixed-effect one (question noise only) on t with 2 df."""
    result = seed_level(np.array([-9.0, -8.0, -6.6]), np.array([2.4, 2.4, 2.4]))
    floor = stats.t.ppf(0.975, 2) * 2.4 / math.sqrt(3)
    assert result.high - result.effect == pytest.approx(floor)
    assert result.tau == 0.0 and result.df == 2 and result.k == 3
    plain_t = stats.t.ppf(0.975, 2) * np.std([-9.0, -8.0, -6.6], ddof=1) / math.sqrt(3)
    assert plain_t < floor


def test_degenerate_inputs_give_a_note_not_a_nan_verdict():
    one = seed_level(np.array([2.0]), np.array([1.0]))
    assert math.isnan(one.p_value) and "one seed" in one.note
    constant = seed_level(np.array([0.0, 0.0, 0.0]), np.zeros(3))
    assert constant.p_value == 1.0 and "zero variance" in constant.note
    no_question_noise = seed_level(np.array([1.0, 2.0, 3.0]), np.zeros(3))  # the plain t over seed means
    assert no_question_noise.p_value == pytest.approx(stats.ttest_1samp([1.0, 2.0, 3.0], 0).pvalue)
    with_a_nan = seed_level(np.array([1.0, np.nan]), np.array([1.0, 1.0]))
    assert math.isnan(with_a_nan.p_value) and "not a finite number" in with_a_nan.note
    mixed = seed_level(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.5, 0.5]))  # SE 0 at one seed: floored, no inf
    assert np.isfinite(mixed.low) and mixed.p_value > 0
