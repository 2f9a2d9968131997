"""`python -m analysis.power --runs PILOT`: from a pilot sweep, the smallest difference each design (seeds x test
questions) would detect at 80% power, per study, so a group can choose how many seeds and questions to pay for.

From the pilot's question-level comparisons (analysis/question_level.py, one metric on one test set) two noise
sources are estimated and averaged over the study's comparisons:
- question noise: the variance over questions of a per-question difference level - reference (within a seed);
- seed noise: the variance over seeds of a seed's mean difference, less the question noise it already holds
  (var(seed effects) - question variance / pilot questions, at least 0); it needs a pilot of two or more seeds.
A design of k seeds and m questions estimates a difference with standard error sqrt(seed / k + question / (k m));
the minimum detectable difference at two-sided level alpha and the given power is
(z(1 - alpha/2) + z(power)) x that error (a normal approximation: with few seeds a t-test needs somewhat more).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.question_level import METRICS, comparisons
from analysis.records import NoRunsError, scan_run_dirs
from analysis.studies import STUDIES, study_versions
from analysis.tables import IN_DOMAIN

SEEDS = (1, 2, 3, 5, 10)
QUESTIONS = (500, 1000, 2000, 7000)


@dataclass(frozen=True)
class Noise:
    """A study's noise per comparison, averaged over its comparisons (the metric's unit squared)."""

    question_variance: float
    seed_variance: float  # NaN from a one-seed pilot
    comparisons: int
    pilot_seeds: int
    pilot_questions: int


def noise(by_seed_list: list[dict]) -> Noise:
    """Question and seed variance from comparisons' {seed: (differences, ...)} (Comparison.by_seed)."""
    question, seed, seeds, questions = [], [], [], []
    for by_seed in by_seed_list:
        differences = [d for d, _, _ in by_seed.values()]
        within = float(np.mean([d.var(ddof=1) for d in differences]))
        question.append(within)
        seeds.append(len(differences))
        questions.append(int(np.mean([len(d) for d in differences])))
        if len(differences) > 1:
            between = float(np.var([d.mean() for d in differences], ddof=1))
            seed.append(max(0.0, between - within / questions[-1]))
    return Noise(float(np.mean(question)), float(np.mean(seed)) if seed else float("nan"), len(by_seed_list),
                 min(seeds), min(questions))


def minimum_detectable(noise: Noise, seeds: int, questions: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true difference a design of `seeds` x `questions` detects with `power` (two-sided `alpha`);
    a one-seed pilot's unknown seed variance counts as 0 (evaluation noise only)."""
    seed_variance = 0.0 if math.isnan(noise.seed_variance) else noise.seed_variance
    error = math.sqrt(seed_variance / seeds + noise.question_variance / (seeds * questions))
    return (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * error


def design_table(noise: Noise, seeds=SEEDS, questions=QUESTIONS, power: float = 0.8,
                 alpha: float = 0.05) -> pd.DataFrame:
    """Minimum detectable differences: a row per seed count, a column per question count."""
    return pd.DataFrame({f"{m} questions": [minimum_detectable(noise, k, m, power, alpha) for k in seeds]
                         for m in questions}, index=pd.Index(seeds, name="seeds"))


def study_noise(runs: pd.DataFrame, metric: str = "accuracy", test_set: str = IN_DOMAIN) -> dict[str, Noise]:
    """Noise of every study the runs fill, from its comparisons on the metric and test set (those with outcomes)."""
    found = {}
    for study, chosen in (pair for s in STUDIES for pair in study_versions(runs, s)):
        by_seed = [c.by_seed for c in comparisons(chosen, study.rows) if not c.refused
                   and c.labels["metric"] == metric and c.labels["test_set"] == test_set]
        if by_seed:
            found[study.stem] = noise(by_seed)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.power", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, metavar="DIR", help="the pilot's run or sweep folders")
    parser.add_argument("--metric", default="accuracy", choices=[m for m, *_ in METRICS])
    parser.add_argument("--test-set", default=IN_DOMAIN, help=f"an extra test set's name (default {IN_DOMAIN})")
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--questions", nargs="+", type=int, default=QUESTIONS)
    parser.add_argument("--power", type=float, default=0.8)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out", type=Path, help="also write <study>_power.csv here")
    args = parser.parse_args(argv)
    try:
        runs = scan_run_dirs(args.runs).finished_only(", ".join(args.runs))[0]
    except (NoRunsError, FileNotFoundError) as error:
        parser.exit(2, f"python -m analysis.power: error: {error}\n")
    found = study_noise(runs, args.metric, args.test_set)
    if not found:
        parser.exit(2, f"python -m analysis.power: error: no study comparison with per-question outcomes "
                       f"(predictions.jsonl) for {args.metric} on {args.test_set} in {', '.join(args.runs)}\n")
    for stem, measured in found.items():
        table = design_table(measured, args.seeds, args.questions, args.power, args.alpha)
        seed_sd = ("not measured (a one-seed pilot): the table covers evaluation noise only"
                   if math.isnan(measured.seed_variance) else f"{math.sqrt(measured.seed_variance):.2f}")
        print(f"### {stem}: minimum detectable {args.metric} difference ({args.test_set}), power {args.power:g}, "
              f"two-sided alpha {args.alpha:g}\n\npilot: {measured.comparisons} comparison(s), "
              f"{measured.pilot_seeds} seed(s) x {measured.pilot_questions} questions; question-level SD "
              f"{math.sqrt(measured.question_variance):.2f}, seed-level SD {seed_sd}\n")
        print(table.map(lambda v: f"{v:.2f}").to_markdown(disable_numparse=True) + "\n")
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.out / f"{stem}_power.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
