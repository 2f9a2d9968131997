"""Tables and the report with extra test sets: a column group per test set (in-domain first) in the per-arm and
paired tables and on index.html, and the methods study's zero-shot row (method none)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.__main__ import main
from analysis.tables import extra_test_sets, metric_columns

from .test_analysis import _write_run

SEEDS = (0, 1, 2)
# In-domain and OOD accuracy per method and seed: GRPO gains in-domain, loses some of it out of distribution.
ACCURACY = {"none": (36.0, 30.0), "grpo": (62.0, 44.0), "sft_full": (58.0, 47.0)}


def _metrics(method: str, seed: int) -> dict:
    in_domain, ood = ACCURACY[method]
    metrics = {"test/accuracy": in_domain + seed, "test/closed/accuracy": in_domain + seed, "test/perplexity": 2.0,
               "test/judge_score": 80.0, "test/completion_tokens": 12.0, "test/accuracy/count": 50.0,
               "test/synthetic_ood/accuracy": ood + 2 * seed, "test/synthetic_ood/closed/accuracy": ood + 2 * seed,
               "test/synthetic_ood/judge_score": 60.0 + seed, "test/synthetic_ood/perplexity": 3.0,
               "init/test/accuracy": 36.0, "init/test/synthetic_ood/accuracy": 30.0}
    if method == "grpo":  # a set only some runs recorded: a column, '-' where a run lacks it
        metrics["test/vqa_rad/accuracy"] = 70.0 + seed
    return metrics


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    for method in ACCURACY:
        for seed in SEEDS:
            _write_run(root / "methods-v1" / f"method={method},seed={seed}", ["sweep=methods", f"method={method}",
                                                                              f"seed={seed}"], _metrics(method, seed))
    out = root / "report"
    assert main(["--runs", str(root / "methods-v1"), "--out", str(out)]) == 0
    return out


def test_extra_test_sets_are_found_by_their_accuracy_keys():
    columns = ["test/accuracy", "test/closed/accuracy", "test/accuracy/count", "test/synthetic_ood/accuracy",
               "test/synthetic_ood/judge_score", "test/vqa_rad/accuracy", "test/open/accuracy"]
    assert extra_test_sets(columns) == ["synthetic_ood", "vqa_rad"]  # closed/open are in-domain metric groups
    assert extra_test_sets([c + "_mean" for c in columns], "_mean") == ["synthetic_ood", "vqa_rad"]
    groups = [(column, group) for column, _, group in metric_columns(columns)]
    assert groups[:6] == [(c, "in-domain") for c in ("test/accuracy", "test/perplexity", "test/similarity",
                                                     "test/judge_score", "test/completion_tokens", "test/format_rate")]
    assert groups[6:] == [("test/synthetic_ood/accuracy", "synthetic_ood"), ("test/synthetic_ood/judge_score", "synthetic_ood"),
                          ("test/vqa_rad/accuracy", "vqa_rad")]


def test_per_arm_and_paired_tables_have_a_column_group_per_test_set(report):
    arms = pd.read_csv(report / "methods.csv").set_index("method")
    # The zero-shot row (method none) beside the trained methods.
    assert sorted(arms.index) == ["grpo", "none", "sft_full"]
    for method, (in_domain, ood) in ACCURACY.items():
        assert arms.loc[method, "test/accuracy_mean"] == pytest.approx(in_domain + 1)
        assert arms.loc[method, "test/synthetic_ood/accuracy_mean"] == pytest.approx(ood + 2)
    assert arms.loc["grpo", "test/vqa_rad/accuracy_mean"] == 71.0 and pd.isna(arms.loc["none", "test/vqa_rad/accuracy_mean"])
    paired = pd.read_csv(report / "methods_paired.csv").set_index("level")
    # Paired by seed against GRPO, per test set: the zero-shot row says what GRPO gained, in domain and out.
    assert paired.loc["none", "test/accuracy_mean"] == pytest.approx(-26.0)
    assert paired.loc["none", "test/synthetic_ood/accuracy_mean"] == pytest.approx(-14.0)
    assert paired.loc["sft_full", "test/synthetic_ood/accuracy_mean"] == pytest.approx(3.0)
    assert paired.loc["sft_full", "test/synthetic_ood/accuracy_ci95"] == pytest.approx(0.0)
    header = (report / "methods.md").read_text().splitlines()[4]
    titles = [cell.strip() for cell in header.strip("|").split("|")]
    assert titles[:8] == ["method", "n", "Accuracy (%)", "Perplexity", "Similarity", "Judge score (%)",
                          "Completion length (tokens)", "Format rate (%)"]
    assert titles[8:12] == ["synthetic_ood: Accuracy (%)", "synthetic_ood: Perplexity", "synthetic_ood: Judge score (%)",
                            "vqa_rad: Accuracy (%)"]
    assert "synthetic_ood: Accuracy (%)" in (report / "methods_paired.md").read_text()


def test_the_report_groups_each_test_sets_columns_under_its_name(report):
    html = (report / "index.html").read_text()
    section = html[html.index('<h2 id="methods">'):]
    # One header row names the groups (in-domain first), the next the metrics.
    assert section.index(">in-domain</th>") < section.index(">synthetic_ood</th>") < section.index(">vqa_rad</th>")
    assert 'colspan="6" halign="left">in-domain</th>' in section
    assert 'colspan="3" halign="left">synthetic_ood</th>' in section
    assert f"{ACCURACY['grpo'][1] + 2:.2f} ± " in section and "-14.00 ± 0.00" in section


def test_a_study_gets_no_column_group_for_a_set_only_other_studies_recorded():
    from analysis.studies import without_unrecorded_sets

    runs = pd.DataFrame({"seed": [0, 0], "test/accuracy": [50.0, 60.0], "test/ood/accuracy": [None, None],
                         "init/test/ood/accuracy": [None, None], "test/rad/accuracy": [40.0, None]})
    assert list(without_unrecorded_sets(runs).columns) == ["seed", "test/accuracy", "test/rad/accuracy"]
