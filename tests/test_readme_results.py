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
    ("GRPO 62.2%", "methods.csv", ("method", "grpo"), "test/accuracy_mean", 1),
    ("full SFT 58.3%", "methods.csv", ("method", "sft_full"), "test/accuracy_mean", 1),
    ("LoRA SFT 48.5%", "methods.csv", ("method", "sft_lora"), "test/accuracy_mean", 1),
    ("DPO\n40.4%", "methods.csv", ("method", "dpo"), "test/accuracy_mean", 1),
    ("semantic reward\n(+2.9 points)", "semantic_paired.csv", ("level", "semantic"), "test/accuracy_mean", 1),
    ("Dr.GRPO (-0.3)", "bias_paired.csv", ("level", "dr_grpo"), "test/accuracy_mean", 1),
    ("completion by 2.6", "length_paired.csv", ("level", "ecr"), "test/completion_tokens_mean", 1),
    ("and 2.5 tokens", "length_paired.csv", ("level", "cwr"), "test/completion_tokens_mean", 1),
    ("+12.2 points", "semantic_paired.csv", ("level", "semantic"), "test/judge_score_mean", 1),
    ("24.4 points above", "init_paired.csv", ("level", "base"), "test/accuracy_mean", 1),
]
# (table, level, metric, whether the README says its paired 95% interval excludes zero)
INTERVALS = [
    ("methods_paired.csv", "sft_lora", "test/accuracy", True),
    ("methods_paired.csv", "dpo", "test/accuracy", True),
    ("methods_paired.csv", "sft_full", "test/accuracy", False),
    ("length_paired.csv", "ecr", "test/completion_tokens", False),
    ("length_paired.csv", "cwr", "test/completion_tokens", False),
    ("length_paired.csv", "ecr", "test/accuracy", False),
    ("length_paired.csv", "cwr", "test/accuracy", False),
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
