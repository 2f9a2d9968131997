"""How large a difference a design can resolve: the noise of a study's comparisons (question and seed variance,
pooled over its comparisons) and the minimum detectable difference of the test that decides, a t-test on k seeds
(noncentral t, statsmodels' TTestPower), never a z approximation: at 3 seeds the t on 2 df needs about twice
what z promises.

Units: the metric's (points for accuracy in percent; variances in its square).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestPower

from analysis.clustered import cluster_se

POWER = 0.8
ALPHA = 0.05


@dataclass(frozen=True)
class Noise:
    """A study's noise per comparison: question_variance (over questions of a per-question difference, within a
    seed, averaged over the comparisons), seed_variance (tau^2: between-seed variance of a seed's mean difference
    beyond its question noise, pooled over the comparisons with 2+ seeds; NaN from a one-seed pilot) and its 95%
    interval (chi-square on seed_df = sum of k - 1; the comparisons share their reference arm, so the interval is
    if anything too narrow)."""

    question_variance: float
    seed_variance: float
    comparisons: int
    pilot_seeds: int
    pilot_questions: int
    seed_variance_low: float = float("nan")
    seed_variance_high: float = float("nan")
    seed_df: int = 0


def _question_variance(differences: np.ndarray, clusters: np.ndarray | None) -> float:
    """The variance over questions of a per-question difference; where questions share images, the effective one
    (questions x the cluster-robust SE squared: the design effect kept, so m questions of the same structure give
    a mean difference of variance this / m)."""
    if clusters is None:
        return float(differences.var(ddof=1))
    return len(differences) * cluster_se(differences, clusters) ** 2


def noise(by_seed_list: list[dict], clusters_list: list[dict] | None = None) -> Noise:
    """Question and seed variance from comparisons' {seed: (differences, ...)} (question_level.Comparison.by_seed),
    and their {seed: image cluster labels} (Comparison.clusters; absent: one question per image). The seed variance
    is pooled before subtracting the question noise (a per-comparison max(0, .) would bias it upwards)."""
    question, seeds, questions, between, between_df, within_per_mean = [], [], [], [], [], []
    for by_seed, clusters in zip(by_seed_list, clusters_list or [{}] * len(by_seed_list), strict=True):
        differences = [np.asarray(v[0], float) for v in by_seed.values()]
        within = float(np.mean([_question_variance(d, clusters.get(seed))
                                for d, seed in zip(differences, by_seed, strict=True)]))
        m = int(np.mean([len(d) for d in differences]))
        question.append(within)
        seeds.append(len(differences))
        questions.append(m)
        if len(differences) > 1:
            between.append(float(np.var([d.mean() for d in differences], ddof=1)))
            between_df.append(len(differences) - 1)
            within_per_mean.append(within / m)
    seed_df = int(sum(between_df))
    if not seed_df:
        return Noise(float(np.mean(question)), float("nan"), len(by_seed_list), min(seeds), min(questions))
    pooled = float(np.dot(between, between_df) / seed_df)  # the variance of a seed's mean difference
    floor = float(np.dot(within_per_mean, between_df) / seed_df)  # the part of it that is question noise
    low, high = (seed_df * pooled / stats.chi2.ppf(q, seed_df) for q in (0.975, 0.025))
    return Noise(float(np.mean(question)), max(0.0, pooled - floor), len(by_seed_list), min(seeds), min(questions),
                 max(0.0, low - floor), max(0.0, high - floor), seed_df)


def minimum_detectable(noise: Noise, seeds: int, questions: int, power: float = POWER, alpha: float = ALPHA,
                       seed_variance: float | None = None) -> float:
    """The smallest true difference that a two-sided t-test on `seeds` per-seed paired effects (df = seeds - 1; what
    analysis/seed_level.py decides with) finds with `power` at level `alpha`, each seed scoring `questions`
    questions. NaN at one seed (no seed-level test exists) and when the seed variance is unknown (a one-seed
    pilot). `seed_variance` overrides the noise's (e.g. its upper bound)."""
    tau2 = noise.seed_variance if seed_variance is None else seed_variance
    if seeds < 2 or math.isnan(tau2):
        return float("nan")
    per_seed_sd = math.sqrt(tau2 + noise.question_variance / questions)
    d = TTestPower().solve_power(effect_size=None, nobs=seeds, alpha=alpha, power=power, alternative="two-sided")
    return float(d) * per_seed_sd


def evaluation_floor(noise: Noise, seeds: int, questions: int, power: float = POWER, alpha: float = ALPHA) -> float:
    """The question-noise-only lower bound (seed variance taken as 0): what no number of seeds of this size beats;
    not a claim about a seed-level test."""
    return minimum_detectable(noise, seeds, questions, power, alpha, seed_variance=0.0)


def detectable_from_se(se: float, df: int, power: float = POWER, alpha: float = ALPHA) -> float:
    """The smallest true effect a two-sided t-test on df degrees of freedom finds with `power`, for an estimate with
    standard error `se`: se x the noncentrality that reaches it (TTestPower's one-sample t on df + 1 observations has
    noncentrality d sqrt(df + 1)). NaN without df or SE."""
    if not df or df < 1 or se is None or math.isnan(se):
        return float("nan")
    d = TTestPower().solve_power(effect_size=None, nobs=df + 1, alpha=alpha, power=power, alternative="two-sided")
    return float(se * d * math.sqrt(df + 1))
