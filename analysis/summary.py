"""The report's answer first: a sentence per comparison (its effect, deciding interval, n and df, resolved or not)
from a study's verdict table, and for the factorial what its model resolves against run-to-run noise. Accuracy
only (points): the tables below the sentences hold every metric."""

from __future__ import annotations

import pandas as pd

METRIC = "accuracy"


def comparison_sentences(questions: pd.DataFrame, metric: str = METRIC) -> list[str]:
    """One sentence per (factor, level): each test set's effect in points, its 95% CI, n and df, and the verdict."""
    if questions.empty:
        return []
    rows = questions[questions["metric"] == metric]
    sentences = []
    for (factor, level, reference), group in rows.groupby(["factor", "level", "reference"], sort=False):
        parts = []
        for row in group.to_dict("records"):
            if pd.isna(row["effect"]):
                parts.append(f"{row['test_set']}: {row['note'] or row['verdict']}")
                continue
            interval = "" if pd.isna(row["low"]) else f" [{row['low']:+.1f}, {row['high']:+.1f}]"
            parts.append(f"{row['test_set']} {row['effect']:+.1f} points{interval} (n = {int(row['n'])}, "
                         f"df = {int(row['df'])}): {row['verdict']}")
        sentences.append(f"{factor} {level} − {reference}, {metric}: " + "; ".join(parts) + ".")
    return sentences


UNITS = {"accuracy": "points", "judge_score": "points", "completion_tokens": "tokens", "similarity": ""}


def factorial_sentences(effects: pd.DataFrame, metrics: tuple[str, ...] = (METRIC, "completion_tokens")) -> list[str]:
    """factorial_metric_sentences for each metric (accuracy; length, where one cell drove every effect)."""
    return [s for m in metrics for s in factorial_metric_sentences(effects, m)]


def factorial_metric_sentences(effects: pd.DataFrame, metric: str = METRIC) -> list[str]:
    """What the factorial model resolves in `metric` against run-to-run noise, what it does not (with the detectable
    range), and which effects one cell drives."""
    if effects.empty or "term" not in effects:
        return []
    rows = effects[(effects["metric"] == metric) & effects["effect"].notna()]
    if rows.empty:
        return []
    sentences = []
    resolved = rows["verdict"].str.contains("resolved", regex=False) & ~rows["verdict"].str.startswith("not")
    noise = "; ".join(dict.fromkeys(rows["run_noise"].dropna()))
    unit = UNITS.get(metric, "")
    found = [f"{r['contrast']} ({r['term']}) {r['test_set']} {r['effect']:+.1f} {unit}" for r in
             rows[resolved].to_dict("records")]
    sentences.append(f"Against run-to-run noise ({noise}), {metric}: resolved: " + (", ".join(found) or "nothing")
                     + ".")
    unresolved = rows[~resolved]
    if not unresolved.empty:
        detectable = unresolved["detectable"].dropna()
        span = (f" (detectable: about {detectable.min():.1f} to {detectable.max():.1f} {unit})"
                if not detectable.empty else "")
        other = "the other " if resolved.any() else ""
        every = (", every two-way interaction among them" if unresolved["term"].str.contains("×").sum()
                 == rows["term"].str.contains("×").sum() else "")
        sentences.append(f"Not resolved: {other}{len(unresolved)} of {len(rows)} contrasts{span}{every}")
        sentences[-1] += "."
    driven = rows[rows["one_cell"].fillna("") != ""]
    if not driven.empty:
        sentences.append(f"Driven by one cell ({metric}): " + "; ".join(
            f"{r['contrast']} {r['test_set']} {r['effect']:+.2f} ({r['one_cell']})" for r in driven.to_dict("records"))
            + ".")
    return sentences
