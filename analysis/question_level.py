"""Question-level paired tests of every paired comparison (level vs the factor's reference, as analysis/paired.py
pairs them): how much of a difference is evaluation noise, measured on the test questions both arms answered,
at any number of seeds.

For each comparison, test set and metric (accuracy, judge score, similarity, completion length):
1. a pair is a run at the level and a run at the reference with the same seed and the same other factors
   (runs sharing a cell are averaged per question first); its per-question difference level - reference is
   taken on the question ids both hold (analysis.significance.paired_values refuses arms scored on other
   questions); a seed's difference is the mean over its pairs (the factorial's other-factor combinations);
2. per seed and pooled over seeds: a paired bootstrap interval over questions and, for accuracy with one run per
   arm and seed, an exact McNemar test; with two or more seeds, a two-level bootstrap (seeds, then questions)
   whose interval covers the seed-to-seed noise too; the seed-level t-interval (analysis/paired.py's) beside them;
3. the verdict in words: within evaluation noise (McNemar p >= 0.05 for accuracy, else the question interval
   covers 0), or which way the level differs and whether the seeds' noise covers it (the two-level or the
   seed-level interval covers 0).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.paired import pairing_frame
from analysis.significance import (CONFIDENCE, UnpairedError, mcnemar_exact, paired_bootstrap, paired_values,
                                   two_level_bootstrap)
from analysis.studies import REFERENCE_LEVELS, Study
from analysis.tables import IN_DOMAIN, ci95, latex_escape, write_formats
from medvqa_rl.bookkeeping.question_outcomes import OutcomeReader, local_outcomes

log = logging.getLogger(__name__)

# (metric, outcome field, scale to the tables' unit, title): the tables' metrics that are a mean over questions.
METRICS = (("accuracy", "correct", 100.0, "Accuracy (%)"),
           ("judge_score", "judge_verdict", 100.0, "Judge score (%)"),
           ("similarity", "similarity", 1.0, "Similarity"),
           ("completion_tokens", "completion_tokens", 1.0, "Completion length (tokens)"))
LABELS = ("factor", "level", "reference", "test_set", "metric")
ALPHA = 1 - CONFIDENCE
NOTE = ("question-level paired tests on the questions both arms answered: effect = level − reference (mean over "
        "seeds); seed CI: 95% t-interval over seeds (n ≥ 2); question CI: paired bootstrap over questions, every "
        "seed's questions pooled (evaluation noise only); McNemar p: exact, pooled over seeds (accuracy, one run "
        "per arm and seed); seeds+questions CI: two-level bootstrap, seeds then questions (n ≥ 2); verdict: "
        "within evaluation noise when McNemar p ≥ 0.05 (accuracy) or the question CI covers 0; within seed noise "
        "when the seeds+questions CI or the seed CI covers 0 (with few seeds the bootstrap over seeds is the "
        "narrower, so the wider decides)")


@dataclass
class Comparison:
    """One comparison's per-question differences on one test set and metric: `labels` (LABELS), `by_seed`
    ({seed: (differences level - reference, level values, reference values)}; empty when refused), `binary`
    (0/1 outcomes of one run per arm and seed: McNemar applies), `refused` (why the arms cannot be paired)."""

    labels: dict
    by_seed: dict
    binary: bool = False
    refused: str = ""


def comparisons(runs: pd.DataFrame, factors: tuple[str, ...], outcomes: OutcomeReader = local_outcomes,
                reference: dict[str, str] = REFERENCE_LEVELS, lacking: set | None = None) -> Iterator[Comparison]:
    """Every (factor, level, test set, metric) whose paired runs all hold per-question outcomes; the runs that
    lack them are added to `lacking` (their comparisons are skipped)."""
    read = cache(outcomes)
    for factor in factors:
        ref, others, keyed = pairing_frame(runs, factor, factors, reference)
        if keyed is None:
            continue
        cells = keyed.groupby([*others, "seed", factor], sort=True, dropna=False)["run"].apply(list).unstack(factor)
        for level in sorted(set(cells.columns) - {ref}):
            pairs = cells[[level, ref]].dropna()
            if pairs.empty:
                continue
            all_runs = [r for cell in pairs.to_numpy().ravel() for r in cell]
            missing = [r for r in all_runs if not read(r)]
            if missing:
                if lacking is not None:
                    lacking.update(missing)
                continue
            test_sets = set.intersection(*(set(read(r)) for r in all_runs))
            for test_set in sorted(test_sets, key=lambda s: (s != IN_DOMAIN, s)):
                for metric, field, scale, _ in METRICS:
                    if not all(_has(read(r)[test_set], field) for r in all_runs):
                        continue
                    labels = {"factor": factor, "level": level, "reference": ref, "test_set": test_set,
                              "metric": metric}
                    try:
                        by_seed, binary = _seed_differences(pairs, read, test_set, field, scale,
                                                            f"{factor}={level} and {factor}={ref} runs")
                    except UnpairedError as error:
                        log.warning("%s=%s vs %s on %s: %s", factor, level, ref, test_set, error)
                        yield Comparison(labels, {}, refused=str(error))
                        continue
                    yield Comparison(labels, by_seed, binary and field == "correct")


def question_level_effects(runs: pd.DataFrame, factors: tuple[str, ...], outcomes: OutcomeReader = local_outcomes,
                           reference: dict[str, str] = REFERENCE_LEVELS) -> pd.DataFrame:
    """A row per comparison (see NOTE for the columns). Comparisons whose runs lack per-question outcomes are left
    out (attrs["without_outcomes"]: how many runs); arms scored on different questions get a row whose `note` names
    the mismatch and no statistics."""
    lacking: set = set()
    rows = [c.labels | ({"note": c.refused} if c.refused else _statistics(c.by_seed, c.binary))
            for c in comparisons(runs, factors, outcomes, reference, lacking)]
    frame = pd.DataFrame(rows, columns=[*LABELS, *_STAT_COLUMNS])
    frame.attrs["without_outcomes"] = len(lacking)
    if lacking:
        log.warning("%d run(s) hold no per-question outcomes (predictions.jsonl): their comparisons have no "
                    "question-level tests, e.g. %s", len(lacking), sorted(lacking)[0])
    return frame


_STAT_COLUMNS = ["n", "seeds", "effect", "seed_ci95", "question_low", "question_high", "p_mcnemar", "both_low",
                 "both_high", "verdict", "per_seed", "note"]


def _has(outcomes: dict, field: str) -> bool:
    return bool(outcomes) and all(row.get(field) is not None for row in outcomes.values())


def _values(runs: list[str], read: Callable, test_set: str, field: str, scale: float) -> dict:
    """Question key -> the field's value averaged over the runs of one cell (scaled to the tables' unit)."""
    maps = [{k: float(row[field]) * scale for k, row in read(r)[test_set].items()} for r in runs]
    for run, other in zip(runs[1:], maps[1:], strict=True):
        paired_values(maps[0], other, f"runs {runs[0]} and {run}")
    return {k: float(np.mean([m[k] for m in maps])) for k in maps[0]}


def _seed_differences(pairs: pd.DataFrame, read: Callable, test_set: str, field: str, scale: float,
                      what: str) -> tuple[dict, bool]:
    """({seed: (per-question differences level - reference averaged over the seed's pairs, the first pair's level
    values, its reference values)}, whether every seed has one pair of single runs: then the values are 0/1
    outcomes McNemar can test). Within a seed every arm must hold the same questions (UnpairedError); seeds may
    differ (the synthetic data is drawn from the seed)."""
    per_seed: dict = {}
    for index, (level_runs, ref_runs) in zip(pairs.index, pairs.to_numpy(), strict=True):
        seed = index[-1] if isinstance(index, tuple) else index
        per_seed.setdefault(seed, []).append((_values(level_runs, read, test_set, field, scale),
                                              _values(ref_runs, read, test_set, field, scale),
                                              len(level_runs) == len(ref_runs) == 1))
    by_seed = {}
    for seed, seed_pairs in per_seed.items():
        first = seed_pairs[0][0]
        for level_values, ref_values, _ in seed_pairs:
            paired_values(first, level_values, f"{what} at seed {seed}")
            paired_values(first, ref_values, f"{what} at seed {seed}")
        keys = sorted(first)
        array = lambda values: np.array([values[k] for k in keys])  # noqa: E731
        by_seed[seed] = (np.mean([array(a) - array(b) for a, b, _ in seed_pairs], axis=0),
                         array(seed_pairs[0][0]), array(seed_pairs[0][1]))
    binary = all(len(p) == 1 and p[0][2] for p in per_seed.values())
    return by_seed, binary


def _statistics(by_seed: dict, mcnemar: bool) -> dict:
    seeds = sorted(by_seed)
    differences = [by_seed[s][0] for s in seeds]
    seed_effects = pd.Series([d.mean() for d in differences])
    pooled = paired_bootstrap(np.concatenate(differences))
    both = two_level_bootstrap(differences) if len(seeds) > 1 else None
    p = float("nan")
    per_seed = []
    for seed, d in zip(seeds, differences, strict=True):
        interval = pooled if len(seeds) == 1 else paired_bootstrap(d)
        text = f"{seed}: {interval.effect:+.2f} [{interval.low:.2f}, {interval.high:.2f}]"
        if mcnemar:
            text += f" p={mcnemar_exact(by_seed[seed][1] > 0, by_seed[seed][2] > 0).p_value:.3g}"
        per_seed.append(text)
    if mcnemar:
        a = np.concatenate([by_seed[s][1] for s in seeds]) > 0
        b = np.concatenate([by_seed[s][2] for s in seeds]) > 0
        p = mcnemar_exact(a, b).p_value
    effect, seed_ci = float(seed_effects.mean()), ci95(seed_effects)
    both_low, both_high = (both.low, both.high) if both else (float("nan"), float("nan"))
    return {"n": len(seeds), "seeds": ",".join(map(str, seeds)), "effect": effect, "seed_ci95": seed_ci,
            "question_low": pooled.low, "question_high": pooled.high, "p_mcnemar": p,
            "both_low": both_low, "both_high": both_high,
            "verdict": verdict(effect, p, pooled.low, pooled.high, both_low, both_high, seed_ci),
            "per_seed": "; ".join(per_seed), "note": ""}


def verdict(effect: float, p: float, low: float, high: float, both_low: float = float("nan"),
            both_high: float = float("nan"), seed_ci95: float = float("nan")) -> str:
    """In words: within evaluation noise, or which way the level differs and whether the seeds' noise covers it.
    Seed noise covers it when the two-level interval or the seed-level t-interval covers 0: with few seeds a
    percentile bootstrap over seeds is narrower than the t-interval (it cannot see the t tails), so the wider
    one decides."""
    beyond = p < ALPHA if not math.isnan(p) else not (low <= 0 <= high)
    if not beyond:
        return "within evaluation noise"
    direction = "higher" if effect > 0 else "lower"
    if math.isnan(both_low):  # one seed: no two-level interval
        return f"{direction}, beyond evaluation noise (one seed: seed noise not measured)"
    if both_low <= 0 <= both_high or (not math.isnan(seed_ci95) and abs(effect) <= seed_ci95):
        return f"{direction}, beyond evaluation noise but within seed noise"
    return f"{direction}, beyond evaluation and seed noise"


def _interval(low: float, high: float) -> str:
    return "-" if math.isnan(low) else f"[{low:.2f}, {high:.2f}]"


def display(frame: pd.DataFrame, plus_minus: str = "±", escape=lambda s: s) -> pd.DataFrame:
    """The table as shown: labels, n, effect ± seed CI, the question-level interval and p, the two-level interval,
    the verdict (or the note of a refused pairing). escape: applied to every text cell and title (LaTeX)."""
    titles = {m: t for m, _, _, t in METRICS}
    shown = pd.DataFrame({
        "factor": frame["factor"], "level": frame["level"], "reference": frame["reference"],
        "test set": frame["test_set"], "metric": frame["metric"].map(titles),
        "n": frame["n"].map(lambda n: "-" if pd.isna(n) else str(int(n))),
        "effect": [("-" if pd.isna(e) else f"{e:+.2f}" + ("" if pd.isna(c) else f" {plus_minus} {c:.2f}"))
                   for e, c in zip(frame["effect"], frame["seed_ci95"], strict=True)],
        "question CI": [_interval(lo, hi) for lo, hi in zip(frame["question_low"], frame["question_high"], strict=True)],
        "McNemar p": frame["p_mcnemar"].map(lambda p: "-" if pd.isna(p) else f"{p:.3g}"),
        "seeds+questions CI": [_interval(lo, hi) for lo, hi in zip(frame["both_low"], frame["both_high"], strict=True)],
        "verdict": [v if isinstance(v, str) and v else (n or "-") for v, n in zip(frame["verdict"], frame["note"],
                                                                                  strict=True)],
    })
    text = ["factor", "level", "reference", "test set", "metric", "verdict"]
    shown[text] = shown[text].map(lambda v: escape(str(v)))
    return shown.rename(columns=escape)


def write_question_level(frame: pd.DataFrame, study: Study, out_dir: Path) -> list[Path]:
    """<study>_questions.csv/.md/.tex; nothing when no comparison had per-question outcomes."""
    if frame.empty:
        return []
    title = f"{study.title}: question-level paired tests"
    return write_formats(frame, display(frame), display(frame, r"$\pm$", latex_escape), len(LABELS), title,
                         out_dir / f"{study.stem}_questions", NOTE)
