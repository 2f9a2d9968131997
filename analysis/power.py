"""`python -m analysis.power --runs PILOT`: from a pilot sweep, the smallest difference each design (seeds x test
questions) would detect at 80% power, per study, so a group can choose how many seeds and questions to pay for.

From the pilot's comparisons (analysis/question_level.py, one metric on one test set) two noise sources are
estimated (analysis/detectable.py): question noise (the variance over questions of a per-question difference
level - reference, within a seed) and seed noise tau^2 (the variance over seeds of a seed's mean difference, pooled
over the study's comparisons, less the question noise it already holds), with its 95% interval. A design of k seeds
and m questions is decided by a t-test on k per-seed effects (df = k - 1; analysis/seed_level.py): its minimum
detectable difference comes from the noncentral t, printed at the seed variance's estimate and at its upper 95%
bound. There is no seed-level test at one seed (that row is "-"), and a one-seed pilot cannot measure tau^2: it
prints only the question-noise floor, a lower bound that no design reaches unless run-to-run noise is 0.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from analysis.detectable import Noise, evaluation_floor, minimum_detectable, noise
from analysis.question_level import METRICS, comparisons
from analysis.records import NoRunsError, scan_run_dirs
from analysis.studies import STUDIES, study_versions
from analysis.tables import IN_DOMAIN

SEEDS = (1, 2, 3, 5, 10)
QUESTIONS = (500, 1000, 2000, 7000)


def design_table(noise: Noise, seeds=SEEDS, questions=QUESTIONS, power: float = 0.8, alpha: float = 0.05,
                 seed_variance: float | None = None) -> pd.DataFrame:
    """Minimum detectable differences (noncentral t on k - 1 df): a row per seed count, a column per question count;
    NaN at one seed and from a one-seed pilot. seed_variance overrides the noise's (e.g. its upper bound)."""
    return pd.DataFrame({f"{m} questions": [minimum_detectable(noise, k, m, power, alpha, seed_variance)
                                            for k in seeds] for m in questions}, index=pd.Index(seeds, name="seeds"))


def floor_table(noise: Noise, seeds=SEEDS, questions=QUESTIONS, power: float = 0.8, alpha: float = 0.05):
    """The question-noise floor (seed variance 0): a lower bound, not a seed-level claim."""
    return pd.DataFrame({f"{m} questions": [evaluation_floor(noise, k, m, power, alpha) for k in seeds]
                         for m in questions}, index=pd.Index(seeds, name="seeds"))


def _shown(table: pd.DataFrame) -> str:
    return table.map(lambda v: "-" if math.isnan(v) else f"{v:.2f}").to_markdown(disable_numparse=True)


def study_noise(runs: pd.DataFrame, metric: str = "accuracy", test_set: str = IN_DOMAIN) -> dict[str, Noise]:
    """Noise of every study the runs fill, from its comparisons on the metric and test set (those with outcomes)."""
    found = {}
    for study, chosen in (pair for s in STUDIES for pair in study_versions(runs, s)):
        chosen_comparisons = [c for c in comparisons(chosen, study.rows) if not c.refused
                              and c.labels["metric"] == metric and c.labels["test_set"] == test_set]
        if chosen_comparisons:  # questions sharing an image count by their clusters (analysis/detectable.py)
            found[study.stem] = noise([c.by_seed for c in chosen_comparisons], [c.clusters for c in chosen_comparisons])
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
        head = (f"### {stem}: minimum detectable {args.metric} difference ({args.test_set}), power {args.power:g}, "
                f"two-sided alpha {args.alpha:g}, t-test on the seeds (df = seeds - 1)\n\npilot: "
                f"{measured.comparisons} comparison(s), {measured.pilot_seeds} seed(s) x {measured.pilot_questions} "
                f"questions; question-level SD {math.sqrt(measured.question_variance):.2f}")
        if math.isnan(measured.seed_variance):
            print(f"{head}; seed-level SD not measured (a one-seed pilot): no seed-level claim can be made.\n\n"
                  "Question-noise floor only (seed variance taken as 0; a lower bound, not what a design achieves):\n")
            table = floor_table(measured, args.seeds, args.questions, args.power, args.alpha)
            print(_shown(table) + "\n")
        else:
            sd = [math.sqrt(v) for v in (measured.seed_variance, measured.seed_variance_low,
                                         measured.seed_variance_high)]
            print(f"{head}; seed-level SD {sd[0]:.2f} (95% interval {sd[1]:.2f} to {sd[2]:.2f}, pooled over the "
                  f"comparisons, {measured.seed_df} df)\n\nAt the seed-level SD's estimate (one seed: no seed-level "
                  "test, \"-\"):\n")
            table = design_table(measured, args.seeds, args.questions, args.power, args.alpha)
            print(_shown(table) + "\n")
            print(f"At its upper 95% bound ({sd[2]:.2f}):\n")
            print(_shown(design_table(measured, args.seeds, args.questions, args.power, args.alpha,
                                      measured.seed_variance_high)) + "\n")
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.out / f"{stem}_power.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
