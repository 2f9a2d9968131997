"""Issue 36, item 5: analysis never averages what is not a finite number. A run whose metrics.json holds NaN,
Infinity, a string or null for a table metric is named with its key (a warning and a note in the tables), that value
is left out of every mean and interval, and n counts only the seeds averaged."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.__main__ import main
from analysis.records import load_run_dirs
from analysis.tables import ci95, summarize

from .test_analysis import _metrics, _write_run

pytestmark = pytest.mark.fault


def _bias_sweep(tmp_path, bad):
    """grpo at seeds 0-2 with accuracies 30, 40 and `bad`; dr_grpo at 35, 45, 55."""
    for seed, (grpo, dr) in enumerate(((30.0, 35.0), (40.0, 45.0), (bad, 55.0))):
        for bias, accuracy in (("grpo", grpo), ("dr_grpo", dr)):
            _write_run(tmp_path / f"bias={bias},seed={seed}", ["sweep=bias", f"bias={bias}", f"seed={seed}"],
                       _metrics(0.0) | {"test/accuracy": accuracy})
    # json.dumps writes NaN and Infinity as JS literals, which Python's json reads back as floats
    return tmp_path


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "n/a", None], ids=["nan", "inf", "string", "null"])
def test_a_non_number_is_named_not_averaged_and_not_counted(tmp_path, caplog, bad):
    runs, _ = load_run_dirs([_bias_sweep(tmp_path, bad)])
    bad_run = runs[runs["invalid_metrics"].notna()]
    assert len(bad_run) == 1 and bad_run["run"].iloc[0].endswith("bias=grpo,seed=2")
    assert bad_run["invalid_metrics"].iloc[0].startswith("test/accuracy = ")
    assert "not a finite number, left out of the tables' means" in caplog.text
    arms = summarize(runs, ("bias",)).set_index("bias")
    assert arms.loc["grpo", "test/accuracy_mean"] == 35.0  # 30 and 40 only
    assert arms.loc["grpo", "test/accuracy_ci95"] == pytest.approx(ci95(pd.Series([30.0, 40.0])))
    assert arms.loc["grpo", "test/accuracy_n"] == 2 and arms.loc["grpo", "n"] == 3
    assert arms.loc["dr_grpo", "test/accuracy_n"] == 3


def test_the_tables_say_so(tmp_path):
    sweep = _bias_sweep(tmp_path / "runs", float("inf"))
    out = tmp_path / "out"
    assert main(["--runs", str(sweep), "--out", str(out)]) == 0
    arms, paired = (out / "bias.md").read_text(), (out / "bias_paired.md").read_text()
    assert "35.00 ± 63.53 (n = 2)" in arms  # the two numbers averaged, and said to be two
    assert "not a finite number, left out of the means" in arms and "test/accuracy = inf" in arms
    row = pd.read_csv(out / "bias_paired.csv").iloc[0]
    assert row["test/accuracy_n"] == 2 and row["test/accuracy_mean"] == 5.0  # seeds 0 and 1 pair: +5, +5
    assert "(n = 2)" in paired and "inf" not in row.to_string().lower().replace("info", "")
    assert "bias=grpo,seed=2" in (out / "index.html").read_text()
