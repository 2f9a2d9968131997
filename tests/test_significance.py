"""Question-level paired statistics checked against known cases."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.significance import UnpairedError, mcnemar_exact, paired_bootstrap, paired_values


def test_mcnemar_exact_matches_the_hand_computed_binomial():
    # 10 questions only a gets right, 2 only b, 88 concordant: p = 2 * P(X <= 2 | n = 12, 1/2) = 2 * 79 / 4096.
    a = np.array([1] * 10 + [0] * 2 + [1] * 50 + [0] * 38, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 50 + [0] * 38, bool)
    result = mcnemar_exact(a, b)
    assert (result.a_only, result.b_only) == (10, 2)
    assert result.p_value == pytest.approx(2 * 79 / 4096)
    assert mcnemar_exact(a, a).p_value == 1.0  # nothing discordant


def test_the_bootstrap_of_identical_or_equally_good_arms_covers_zero():
    same = np.zeros(1000)
    assert paired_bootstrap(same).covers_zero()
    rng = np.random.default_rng(1)
    a, b = rng.random(1000) < 0.6, rng.random(1000) < 0.6  # two arms of the same accuracy, different errors
    interval = paired_bootstrap(100.0 * (a.astype(float) - b))
    assert interval.covers_zero() and interval.high - interval.low > 1.0


def test_a_real_gain_is_told_from_noise_and_the_interval_is_stable_to_a_tenth_of_a_point():
    rng = np.random.default_rng(2)
    b = rng.random(1000) < 0.5
    a = b | (rng.random(1000) < 0.2)  # a fixes about a tenth of the questions, breaks none
    differences = 100.0 * (a.astype(float) - b)
    first, second = paired_bootstrap(differences, seed=0), paired_bootstrap(differences, seed=1)
    assert first.low > 0 and mcnemar_exact(a, b).p_value < 1e-6
    assert abs(first.low - second.low) < 0.1 and abs(first.high - second.high) < 0.1


def test_arms_scored_on_different_questions_are_refused_not_paired_by_position():
    ids, a, b = paired_values({"q2": 1, "q1": 0}, {"q1": 1, "q2": 1})
    assert ids == ["q1", "q2"] and a.tolist() == [0.0, 1.0] and b.tolist() == [1.0, 1.0]
    with pytest.raises(UnpairedError, match=r"1 only in the first, e\.g\. \['q3'\]; 0 only in the second"):
        paired_values({"q1": 1, "q3": 0}, {"q1": 1})
