"""A study's table: rows = factor levels, columns = mean and 95% confidence interval over seeds;
written as Markdown, LaTeX (booktabs) and CSV. One column group per test set: the in-domain test split's
metrics (test/<metric>) first, then each extra test set's that the runs recorded (test/<set>/<metric>,
eval.test_sets: medvqa_rl/data/test_sets.py).

n counts seeds, never runs: runs that share a seed at one row (an ad-hoc multirun pools the other
factors, so one seed can have several runs there) are averaged first, then the seeds make the interval.
In a sweep every row has one run per seed, so the two counts agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from medvqa_rl.bookkeeping.question_outcomes import IN_DOMAIN  # the column group of the runs' own test split
from medvqa_rl.data.test_sets import name_problem

# (column in the run frame, column title) on the in-domain test split; rates in percent, length in tokens.
METRICS = (
    ("test/accuracy", "Accuracy (%)"),
    ("test/perplexity", "Perplexity"),
    ("test/similarity", "Similarity"),
    ("test/judge_score", "Judge score (%)"),
    ("test/completion_tokens", "Completion length (tokens)"),
    ("test/format_rate", "Format rate (%)"),  # well-formed under the run's reasoning format (reasoning=think|none|after)
)
_TEST_SET = re.compile(r"test/([^/]+)/accuracy")


def extra_test_sets(columns: Iterable[str], suffix: str = "") -> list[str]:
    """The extra test sets (eval.test_sets) among the columns of a run frame (suffix "") or a table ("_mean"):
    the <set> of each test/<set>/accuracy<suffix>, sorted. test/closed/accuracy and the like are in-domain."""
    found = {m.group(1) for c in columns if c.endswith(suffix)
             and (m := _TEST_SET.fullmatch(c[:len(c) - len(suffix)] if suffix else c))}
    return sorted(name for name in found if name_problem(name) is None)


def metric_columns(columns: Iterable[str], suffix: str = "") -> list[tuple[str, str, str]]:
    """(column, title, group) of every metric a table shows: METRICS (group IN_DOMAIN, always), then each extra
    test set's METRICS that some column holds (test/<set>/<metric><suffix>; group: the set's name)."""
    columns = set(columns)
    found = [(column, title, IN_DOMAIN) for column, title in METRICS]
    for name in extra_test_sets(columns, suffix):
        found += [(f"test/{name}/{column.removeprefix('test/')}", title, name) for column, title in METRICS
                  if f"test/{name}/{column.removeprefix('test/')}{suffix}" in columns]
    return found
# A run's eval/judge (metrics.json) when it names the reward's own judge: its judge score is circular.
REWARD_JUDGE_MARK = "(reward judge)"
JUDGE_COLUMN = ("eval_judge", "Evaluation judge")


def ci95(values: pd.Series) -> float:
    """Half-width of the 95% t-interval of the mean; NaN for fewer than two values."""
    values = values.dropna()
    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def seed_means(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per combination of `keys` and seed: each metric's mean over the runs that share it,
    and `runs`, how many they are. Metrics no run recorded are NaN columns."""
    metrics = [c for c, _, _ in metric_columns(runs.columns)]
    grouped = runs.groupby([*keys, "seed"], sort=True, dropna=False)
    cells = grouped[[c for c in metrics if c in runs]].mean().reindex(columns=metrics)
    cells["runs"] = grouped.size()
    return cells.reset_index()


def seed_list(seeds) -> str:
    return ",".join(map(str, sorted(seeds)))


def metric_stats(per_seed: pd.DataFrame) -> dict:
    """<metric>_mean, <metric>_ci95 and <metric>_n (the seeds averaged: a seed whose value is missing or was not a
    finite number is not counted) over the rows of `per_seed` (a row per seed, a column per metric)."""
    record = {}
    for column, _, _ in metric_columns(per_seed.columns):
        values = per_seed[column]
        record[f"{column}_mean"] = values.mean() if values.notna().any() else float("nan")
        record[f"{column}_ci95"] = ci95(values)
        record[f"{column}_n"] = int(values.notna().sum())
    return record


def invalid_note(runs: pd.DataFrame) -> str:
    """A note naming the runs whose table metrics were not finite numbers (records.py's invalid_metrics), or ""."""
    if "invalid_metrics" not in runs or runs["invalid_metrics"].isna().all():
        return ""
    listed = "; ".join(f"{r} ({v})" for r, v in zip(runs["run"], runs["invalid_metrics"], strict=True) if isinstance(v, str))
    return f"; not a finite number, left out of the means (a cell's n counts only the seeds averaged): {listed}"


def judge_names(judges: pd.Series) -> str:
    """The evaluation judges (eval/judge) of some runs, e.g. `rule (reward judge)`; "-" where none recorded one."""
    names = sorted({str(j) for j in judges.dropna()})
    return ", ".join(names) if names else "-"


def judge_note(frame: pd.DataFrame) -> str:
    """A note for a table whose eval_judge column names the reward's own judge."""
    if JUDGE_COLUMN[0] in frame and frame[JUDGE_COLUMN[0]].astype(str).str.contains(REWARD_JUDGE_MARK, regex=False).any():
        return (f"; judge score {REWARD_JUDGE_MARK}: scored by the judge the arm was trained on (its reward), so it "
                "measures fitting the reward as much as alignment")
    return ""


def arm_note(summary: pd.DataFrame) -> str:
    return ARM_NOTE + judge_note(summary) + summary.attrs.get("invalid", "")


def summarize(runs: pd.DataFrame, rows: tuple[str, ...]) -> pd.DataFrame:
    """One row per combination of the `rows` factors: n (seeds), runs, seeds, then <metric>_mean and
    <metric>_ci95 per metric over the seeds (each seed's runs averaged first), and eval_judge (which judge
    scored the judge score; where the runs recorded it)."""
    records = []
    judged = JUDGE_COLUMN[0] in runs
    for levels, group in seed_means(runs, list(rows)).groupby(list(rows), sort=True, dropna=False):
        levels = levels if isinstance(levels, tuple) else (levels,)
        record = dict(zip(rows, levels)) | {"n": len(group), "runs": int(group["runs"].sum()),
                                            "seeds": seed_list(group["seed"])}
        if judged:
            mine = pd.Series(True, index=runs.index)
            for factor, level in zip(rows, levels):
                mine &= runs[factor].isna() if pd.isna(level) else runs[factor] == level
            record[JUDGE_COLUMN[0]] = judge_names(runs.loc[mine, JUDGE_COLUMN[0]])
        records.append(record | metric_stats(group))
    frame = pd.DataFrame(records)
    frame.attrs["invalid"] = invalid_note(runs)
    return frame


def _cell(mean: float, ci: float, plus_minus: str, n: float = float("nan"), row_n: float = float("nan")) -> str:
    """`mean ± ci`, with `(n = k)` when fewer seeds than the row's were averaged (the others were not numbers)."""
    if np.isnan(mean):
        return "-"
    text = f"{mean:.2f}" if np.isnan(ci) else f"{mean:.2f} {plus_minus} {ci:.2f}"
    return text + (f" (n = {int(n)})" if not (pd.isna(n) or pd.isna(row_n)) and n < row_n else "")


def display_frame(summary: pd.DataFrame, rows: tuple[str, ...], plus_minus: str, escape=lambda s: s,
                  grouped: bool = False) -> pd.DataFrame:
    """The table as shown: labels, n, a `mean ± ci` cell per metric, the evaluation judge. With extra test sets,
    each set's columns are titled `<set>: <metric>`, or, grouped (HTML), sit under a header row naming the group
    (IN_DOMAIN, then each set)."""
    metrics = metric_columns(summary.columns, "_mean")
    groups = grouped and any(group != IN_DOMAIN for _, _, group in metrics)
    shown = {("", escape(f)): summary[f].map(lambda v: escape(str(v))) for f in rows}
    shown[("", "n")] = summary["n"]
    for column, title, group in metrics:
        flat = title if group == IN_DOMAIN else f"{group}: {title}"
        shown[(group, escape(title)) if groups else ("", escape(flat))] = [
            _cell(m, c, plus_minus, k, n) for m, c, k, n in zip(
                summary[f"{column}_mean"], summary[f"{column}_ci95"],
                summary.get(f"{column}_n", pd.Series(np.nan, index=summary.index)), summary["n"], strict=True)]
    if JUDGE_COLUMN[0] in summary:
        shown[("", escape(JUDGE_COLUMN[1]))] = summary[JUDGE_COLUMN[0]].map(lambda v: escape(str(v)))
    frame = pd.DataFrame(shown)
    if not groups:
        frame.columns = [title for _, title in frame.columns]
    return frame


def latex_escape(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


ARM_NOTE = ("mean ± 95% t-interval over seeds (n = seeds per row, df = n − 1; runs that share a seed are averaged "
            "first)")


def write_table(summary: pd.DataFrame, rows: tuple[str, ...], title: str, out_stem: Path,
                note: str = ARM_NOTE) -> list[Path]:
    """<stem>.csv (numbers), <stem>.md and <stem>.tex (mean ± 95% CI, under the header line `note`);
    `rows` are the label columns. Returns the paths."""
    return write_formats(summary, display_frame(summary, rows, "±"),
                         display_frame(summary, rows, r"$\pm$", latex_escape), len(rows), title, out_stem, note)


def write_formats(numbers: pd.DataFrame, shown: pd.DataFrame, shown_latex: pd.DataFrame, labels: int, title: str,
                  out_stem: Path, note: str) -> list[Path]:
    """<stem>.csv (the numbers), <stem>.md (`shown`) and <stem>.tex (`shown_latex`, booktabs; its first `labels`
    columns left-aligned), each under the title and the header line `note`. Returns the paths."""
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md, tex = (out_stem.with_suffix(s) for s in (".csv", ".md", ".tex"))
    numbers.to_csv(csv, index=False)
    md.write_text(f"### {title}\n\n{note}\n\n{shown.to_markdown(index=False, disable_numparse=True)}\n")
    body = shown_latex.style.hide(axis="index").to_latex(
        hrules=True, column_format="l" * labels + "r" * (len(shown_latex.columns) - labels))
    tex_note = note.replace("±", r"$\pm$")
    tex.write_text(f"% {title}: {tex_note}\n{body}")
    return [csv, md, tex]
