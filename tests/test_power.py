"""analysis/power.py: the planning aid's noise estimates and minimum detectable differences on known cases, and
its command on a crafted pilot sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.power import Noise, design_table, main, minimum_detectable, noise

from .test_question_level import _outcomes, _predictions, _write

Z = 1.959963984540054 + 0.8416212335729143  # z(0.975) + z(0.8): what the old, wrong, planning aid used


def _power(difference: float, sd: float, k: int) -> float:
    """By hand: power of the two-sided one-sample t-test on k seeds whose effects have SD `sd` (noncentral t)."""
    crit = stats.t.ppf(0.975, k - 1)
    ncp = difference / (sd / math.sqrt(k))
    return stats.nct.sf(crit, k - 1, ncp) + stats.nct.cdf(-crit, k - 1, ncp)


def test_the_minimum_detectable_difference_is_the_t_tests_not_z():
    with_seeds = Noise(question_variance=2500.0, seed_variance=16.0, comparisons=1, pilot_seeds=3, pilot_questions=1000)
    per_seed_sd = math.sqrt(16.0 + 2500 / 1000)
    for k in (2, 3, 10):
        detectable = minimum_detectable(with_seeds, k, 1000)
        assert _power(detectable, per_seed_sd, k) == pytest.approx(0.8, abs=1e-4)  # solves the noncentral t
        assert detectable > Z * per_seed_sd / math.sqrt(k)  # always more than z promised
    # At 3 seeds about twice the z answer (the 7.1 printed vs about 14).
    assert minimum_detectable(with_seeds, 3, 1000) / (Z * per_seed_sd / math.sqrt(3)) == pytest.approx(2.02, abs=0.01)
    assert math.isnan(minimum_detectable(with_seeds, 1, 1000))  # no seed-level test at one seed
    one_seed_pilot = Noise(2500.0, float("nan"), 1, 1, 1000)
    assert math.isnan(minimum_detectable(one_seed_pilot, 3, 1000))  # no seed-level claim from a one-seed pilot
    table = design_table(with_seeds, seeds=(1, 3, 10), questions=(500, 7000))
    assert math.isnan(table.loc[1, "500 questions"])
    assert table.loc[3, "500 questions"] > table.loc[3, "7000 questions"] > table.loc[10, "7000 questions"]
    # More questions cannot beat the seed noise.
    assert minimum_detectable(with_seeds, 3, 10**9) > 4.0


def test_noise_separates_seed_from_question_variance():
    rng = np.random.default_rng(0)
    shifts = (-6.0, 0.0, 6.0)  # the seeds' true effects: SD 6
    by_seed = {s: (rng.normal(shift, 40.0, 4000), None, None) for s, shift in enumerate(shifts)}
    measured = noise([by_seed])
    assert measured.question_variance == pytest.approx(1600.0, rel=0.05)
    assert math.sqrt(measured.seed_variance) == pytest.approx(6.0, rel=0.25)
    assert (measured.pilot_seeds, measured.pilot_questions) == (3, 4000)
    assert measured.seed_variance_low < measured.seed_variance < measured.seed_variance_high
    assert measured.seed_df == 2
    # Pooled over comparisons: two comparisons of 3 seeds each give 4 df and a narrower interval.
    twice = noise([by_seed, {s: (v[0] + 1.0, None, None) for s, v in by_seed.items()}])
    assert twice.seed_df == 4 and twice.seed_variance_high < measured.seed_variance_high
    one_seed = noise([{0: by_seed[0]}])
    assert math.isnan(one_seed.seed_variance)


def test_questions_sharing_an_image_count_as_fewer_in_the_noise():
    """Five questions an image, their differences decided per image: the question noise is the effective one
    (questions x the cluster-robust SE squared), about five times the naive variance, so more is detectable."""
    rng = np.random.default_rng(1)
    images, per_image = 400, 5
    by_seed = {s: (np.repeat(rng.choice([-100.0, 0.0, 100.0], images), per_image), None, None) for s in range(3)}
    clusters = {s: np.repeat(np.arange(images), per_image) for s in range(3)}
    naive, clustered = noise([by_seed]), noise([by_seed], [clusters])
    assert clustered.question_variance / naive.question_variance == pytest.approx(per_image, rel=0.05)
    assert minimum_detectable(clustered, 3, 2000, seed_variance=0.0) > 2 * minimum_detectable(naive, 3, 2000,
                                                                                              seed_variance=0.0)
    one_per_image = {s: np.arange(images * per_image) for s in range(3)}
    assert noise([by_seed], [one_per_image]).question_variance == pytest.approx(naive.question_variance, rel=1e-9)


def test_the_command_prints_a_design_table_per_study(tmp_path, capsys):
    for seed in range(2):
        grpo, dr = _outcomes(seed, 0.3)
        for bias, correct in (("grpo", grpo), ("dr_grpo", dr)):
            _write(tmp_path / f"bias={bias},seed={seed}", bias, seed, _predictions(seed, correct, 20.0))
    assert main(["--runs", str(tmp_path), "--seeds", "1", "3", "--questions", "200", "1000",
                 "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "### bias: minimum detectable accuracy difference (in-domain), power 0.8" in printed
    assert "2 seed(s) x 200 questions" in printed
    header = next(line for line in printed.splitlines() if line.startswith("| seeds"))
    assert [c.strip() for c in header.split("|")[2:4]] == ["200 questions", "1000 questions"]
    rows = [line.split("|") for line in printed.splitlines() if line.startswith(("| 1 ", "| 3 "))]
    assert [row[1].strip() for row in rows] == ["1", "3", "1", "3"]  # at the estimate, at its upper bound
    assert rows[0][2].strip() == "-"  # one seed: no seed-level test
    assert "t-test on the seeds (df = seeds - 1)" in printed and "95% interval" in printed
    assert float(rows[1][2]) > float(rows[1][3])  # more questions: smaller
    assert (tmp_path / "out" / "bias_power.csv").exists()
    with pytest.raises(SystemExit):
        main(["--runs", str(tmp_path), "--test-set", "nowhere"])
