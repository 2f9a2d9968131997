"""analysis/power.py: the planning aid's noise estimates and minimum detectable differences on known cases, and
its command on a crafted pilot sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.power import Noise, design_table, main, minimum_detectable, noise

from .test_question_level import _outcomes, _predictions, _write

Z = 1.959963984540054 + 0.8416212335729143  # z(0.975) + z(0.8)


def test_the_minimum_detectable_difference_is_the_textbook_one():
    only_questions = Noise(question_variance=2500.0, seed_variance=0.0, comparisons=1, pilot_seeds=3,
                           pilot_questions=1000)
    assert minimum_detectable(only_questions, 1, 1000) == pytest.approx(Z * math.sqrt(2500 / 1000))
    assert minimum_detectable(only_questions, 4, 1000) == pytest.approx(Z * math.sqrt(2500 / 4000))
    with_seeds = Noise(2500.0, 16.0, 1, 3, 1000)
    # More questions cannot beat the seed noise: at 1 seed it stays above Z x 4.
    assert minimum_detectable(with_seeds, 1, 10**9) == pytest.approx(Z * 4.0, rel=1e-6)
    table = design_table(with_seeds, seeds=(1, 3), questions=(500, 7000))
    assert table.loc[1, "500 questions"] > table.loc[1, "7000 questions"] > table.loc[3, "7000 questions"]


def test_noise_separates_seed_from_question_variance():
    rng = np.random.default_rng(0)
    shifts = (-6.0, 0.0, 6.0)  # the seeds' true effects: SD 6
    by_seed = {s: (rng.normal(shift, 40.0, 4000), None, None) for s, shift in enumerate(shifts)}
    measured = noise([by_seed])
    assert measured.question_variance == pytest.approx(1600.0, rel=0.05)
    assert math.sqrt(measured.seed_variance) == pytest.approx(6.0, rel=0.25)
    assert (measured.pilot_seeds, measured.pilot_questions) == (3, 4000)
    one_seed = noise([{0: by_seed[0]}])
    assert math.isnan(one_seed.seed_variance)


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
    assert [row[1].strip() for row in rows] == ["1", "3"]
    assert float(rows[0][2]) > float(rows[1][2]) > float(rows[1][3])  # more seeds, more questions: smaller
    assert (tmp_path / "out" / "bias_power.csv").exists()
    with pytest.raises(SystemExit):
        main(["--runs", str(tmp_path), "--test-set", "nowhere"])
