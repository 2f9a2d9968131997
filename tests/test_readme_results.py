"""The README's sentences about results say what results/studies/ holds: each number is the table's, rounded
as written, and each "excludes zero" / "includes zero" is what the paired 95% interval says."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "results" / "studies"

# (text in the README, table, row (column, value), metric column, digits)
NUMBERS = [
    ("GRPO 67.6%", "methods.csv", ("method", "grpo"), "test/accuracy_mean", 1),
    ("full SFT 58.3%", "methods.csv", ("method", "sft_full"), "test/accuracy_mean", 1),
    ("LoRA SFT 48.5%", "methods.csv", ("method", "sft_lora"), "test/accuracy_mean", 1),
    ("DPO\n40.1%", "methods.csv", ("method", "dpo"), "test/accuracy_mean", 1),
    ("untrained instruct 37.8%", "methods.csv", ("method", "none"), "test/accuracy_mean", 1),
    ("OOD: GRPO 51.1%", "methods.csv", ("method", "grpo"), "test/synthetic_ood/accuracy_mean", 1),
    ("full SFT 43.3%", "methods.csv", ("method", "sft_full"), "test/synthetic_ood/accuracy_mean", 1),
    ("LoRA SFT 38.0%", "methods.csv", ("method", "sft_lora"), "test/synthetic_ood/accuracy_mean", 1),
    ("DPO 30.7%", "methods.csv", ("method", "dpo"), "test/synthetic_ood/accuracy_mean", 1),
    ("untrained 28.7%", "methods.csv", ("method", "none"), "test/synthetic_ood/accuracy_mean", 1),
    ("full SFT -7.9", "methods_paired.csv", ("level", "sft_full"), "test/synthetic_ood/accuracy_mean", 1),
    ("OOD, -9.3", "methods_paired.csv", ("level", "sft_full"), "test/accuracy_mean", 1),
    ("semantic reward (-1.6 points)", "semantic_paired.csv", ("level", "semantic"), "test/accuracy_mean", 1),
    ("Dr.GRPO (-1.5)", "bias_paired.csv", ("level", "dr_grpo"), "test/accuracy_mean", 1),
    ("completion by 3.3", "length_paired.csv", ("level", "ecr"), "test/completion_tokens_mean", 1),
    ("and\n2.7 tokens", "length_paired.csv", ("level", "cwr"), "test/completion_tokens_mean", 1),
    ("ECR -8.4", "length_paired.csv", ("level", "ecr"), "test/accuracy_mean", 1),
    ("CWR -6.3", "length_paired.csv", ("level", "cwr"), "test/accuracy_mean", 1),
    ("+3.6\npoints", "semantic_paired.csv", ("level", "semantic"), "test/judge_score_mean", 1),
    ("18.1 points above", "init_paired.csv", ("level", "base"), "test/accuracy_mean", 1),
]
# (table, level, metric, whether the README says its paired 95% interval excludes zero)
INTERVALS = [
    ("methods_paired.csv", "sft_lora", "test/accuracy", True),
    ("methods_paired.csv", "dpo", "test/accuracy", True),
    ("methods_paired.csv", "sft_full", "test/accuracy", True),
    ("length_paired.csv", "ecr", "test/completion_tokens", True),
    ("length_paired.csv", "cwr", "test/completion_tokens", False),
]
# (question-level table, level, test set, metric, the verdict the README gives, McNemar p as written or None)
VERDICTS = [
    ("semantic_questions.csv", "semantic", "in-domain", "accuracy", "within evaluation noise", 0.09),
    ("bias_questions.csv", "dr_grpo", "in-domain", "accuracy", "within evaluation noise", 0.09),
    ("length_questions.csv", "ecr", "in-domain", "accuracy", "lower, beyond evaluation noise but within seed noise", None),
    ("length_questions.csv", "cwr", "in-domain", "accuracy", "lower, beyond evaluation noise but within seed noise", None),
]


def _readme() -> str:
    return (ROOT / "README.md").read_text()


@pytest.mark.parametrize(("text", "table", "row", "metric", "digits"), NUMBERS, ids=[n[0] for n in NUMBERS])
def test_each_number_in_the_readme_is_the_tables(text, table, row, metric, digits):
    frame = pd.read_csv(STUDIES / table)
    value = float(frame.loc[frame[row[0]] == row[1], metric].squeeze())
    assert " ".join(text.split()) in " ".join(_readme().split()), text
    number = next(float(tok.strip("()%+,")) for tok in reversed(text.split()) if _is_number(tok.strip("()%+,")))
    assert round(value, digits) == pytest.approx(number), (text, value)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("table", "level", "metric", "excludes_zero"), INTERVALS,
                         ids=[f"{t[1]}-{t[2]}" for t in INTERVALS])
def test_what_the_readme_says_of_each_interval_is_what_it_is(table, level, metric, excludes_zero):
    frame = pd.read_csv(STUDIES / table)
    row = frame[frame["level"] == level].iloc[0]
    assert (abs(row[f"{metric}_mean"]) > row[f"{metric}_ci95"]) == excludes_zero


@pytest.mark.parametrize(("table", "level", "test_set", "metric", "verdict", "p"), VERDICTS,
                         ids=[f"{v[1]}-{v[3]}" for v in VERDICTS])
def test_what_the_readme_says_of_each_question_level_test_is_what_it_is(table, level, test_set, metric, verdict, p):
    frame = pd.read_csv(STUDIES / table)
    row = frame[(frame["level"] == level) & (frame["test_set"] == test_set) & (frame["metric"] == metric)].iloc[0]
    assert row["verdict"] == verdict
    if p is not None:
        assert round(row["p_mcnemar"], 2) == p
