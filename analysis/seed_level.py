"""The one procedure that decides a comparison at two or more seeds: a random-effects meta-analysis of the per-seed
paired effects with the Hartung-Knapp(-Sidik-Jonkman) correction, t on k - 1 df (statsmodels'
stats.meta_analysis.combine_effects, Paule-Mandel between-seed variance).

Why not a bootstrap over seeds: with 3 seeds there are 10 distinct seed resamples, the seed variance shrinks by
(k - 1)/k and normal quantiles stand where t on 2 df applies; a simulated null then rejects ~12%. Each seed's mean
difference already holds that seed's question noise, so its question-level SE (sd of the per-question differences /
sqrt(questions)) is the within-"study" variance and the between-seed variance tau^2 is what is left.

Why the modified Hartung-Knapp (Roever, Knapp & Friede 2015): the plain HK scale can drop below 1 when the seeds
agree more closely than their question noise allows (three seeds 1.4 points apart with SE 2.4 each), which gives an
interval narrower than the question noise alone; the scale is floored at 1, so the interval is never narrower than
the fixed-effect one (question noise only) with t on k - 1 df.

Units: whatever the differences are in (points for accuracy in percent, tokens for length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

CONFIDENCE = 0.95


@dataclass(frozen=True)
class SeedLevel:
    """A comparison's seed-level estimate: effect (mean over seeds, random-effects weights), its 95% interval and
    two-sided p from t on df = k - 1, the between-seed SD tau (the metric's unit; 0 when the seeds agree within
    their question noise), k seeds, and `note` for a degenerate input (NaN interval and p then)."""

    effect: float
    low: float
    high: float
    p_value: float
    df: int
    k: int
    tau: float
    se: float
    note: str = ""


def question_se(differences: np.ndarray) -> float:
    """Standard error of the mean of one seed's per-question differences (ddof 1); 0 for a constant vector."""
    differences = np.asarray(differences, float)
    return float(differences.std(ddof=1) / math.sqrt(len(differences))) if len(differences) > 1 else 0.0


def seed_level(effects: np.ndarray, ses: np.ndarray, confidence: float = CONFIDENCE) -> SeedLevel:
    """Hartung-Knapp random-effects estimate from per-seed effects and their question-level SEs (same unit).
    Needs k >= 2 seeds (else a note, no test). Seeds with SE 0 (every question scored the same at both arms) cannot
    be weighted by 1/SE^2: when all SEs are 0 the seeds are weighted equally (the plain t over seed means), since the
    spread between seeds is then all the noise there is."""
    effects, ses = np.asarray(effects, float), np.asarray(ses, float)
    k = len(effects)
    mean = float(effects.mean()) if k else float("nan")
    if k < 2:
        return SeedLevel(mean, float("nan"), float("nan"), float("nan"), 0, k, float("nan"), float("nan"),
                         "one seed: no seed-level test (run-to-run noise unmeasured)")
    if not (np.all(np.isfinite(effects)) and np.all(np.isfinite(ses))):
        return SeedLevel(mean, float("nan"), float("nan"), float("nan"), k - 1, k, float("nan"), float("nan"),
                         "a seed's effect or SE is not a finite number")
    df = k - 1
    crit = stats.t.ppf(0.5 + confidence / 2, df)
    if np.all(ses == 0):
        spread = float(effects.std(ddof=1))
        if spread == 0:
            return SeedLevel(mean, mean, mean, 1.0 if mean == 0 else 0.0, df, k, 0.0, 0.0,
                             "zero variance: every question and seed gives the same difference")
        se = spread / math.sqrt(k)
        tau = spread
    else:
        # A seed with SE 0 next to seeds with noise: floor its variance at the smallest positive one, so it is not
        # given infinite weight (its questions all agreed, which is no proof that its seed noise is 0).
        variances = np.maximum(ses**2, np.min(ses[ses > 0]) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):  # its I^2 divides by Q, 0 when the seeds agree exactly
            result = combine_effects(effects, variances, method_re="iterated", use_t=True)
        mean = float(result.mean_effect_re)
        se = math.sqrt(max(float(result.var_hksj_re), float(result.var_eff_w_re)))  # modified HK: scale >= 1
        tau = math.sqrt(max(float(result.tau2), 0.0))
    t = mean / se
    p = float(2 * stats.t.sf(abs(t), df))
    return SeedLevel(mean, mean - crit * se, mean + crit * se, p, df, k, tau, se)
