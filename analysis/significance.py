"""Question-level paired statistics: how much of a difference between two arms scored on the same test questions
is evaluation noise, at any number of seeds.

- exact McNemar test on correct/incorrect (the two-sided binomial test on the discordant questions, as
  statsmodels' mcnemar(exact=True) computes it; scipy.stats.binomtest);
- paired bootstrap over questions of a per-question difference (accuracy: correct_a - correct_b in points;
  any continuous metric likewise; scipy.stats.bootstrap, percentile interval);
These describe evaluation noise only; what decides a comparison at two or more seeds is analysis/seed_level.py.
(The two-level bootstrap over seeds, then questions, that stood here is gone: at 3 seeds it has 10 distinct seed
resamples, shrinks the seed variance by (k - 1)/k and uses normal quantiles, so a null rejected ~12% of the time.)

Arms are paired by question id, never by position: two arms scored on different questions (another test_size
or data seed) are refused with the ids that differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

RESAMPLES = 10_000  # the intervals' ends move by < 0.1 point between bootstrap seeds at 1,000 questions
CONFIDENCE = 0.95


class UnpairedError(ValueError):
    """Two arms were not scored on the same test questions."""


def paired_values(a: dict, b: dict, what: str = "arms") -> tuple[list, np.ndarray, np.ndarray]:
    """(ids, a's values, b's values) of two {question id: value} maps, in one order. Raises UnpairedError naming
    the questions one arm has and the other lacks."""
    only_a, only_b = sorted(set(a) - set(b), key=str), sorted(set(b) - set(a), key=str)
    if only_a or only_b:
        raise UnpairedError(f"the {what} were not scored on the same test questions ({len(only_a)} only in the first, "
                            f"e.g. {only_a[:3]}; {len(only_b)} only in the second, e.g. {only_b[:3]}): a different "
                            "dataset.test_size or data seed? Paired tests compare the same questions only")
    ids = sorted(a, key=str)
    return ids, np.array([float(a[i]) for i in ids]), np.array([float(b[i]) for i in ids])


@dataclass(frozen=True)
class McNemar:
    a_only: int  # questions a gets right and b wrong
    b_only: int
    p_value: float


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> McNemar:
    """Exact McNemar test of two paired correct/incorrect vectors: two-sided binomial test of the discordant
    questions against p = 0.5 (p = 1 when none is discordant)."""
    a_correct, b_correct = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    a_only, b_only = int(np.sum(a_correct & ~b_correct)), int(np.sum(~a_correct & b_correct))
    n = a_only + b_only
    p_value = 1.0 if n == 0 else float(stats.binomtest(a_only, n, 0.5).pvalue)
    return McNemar(a_only, b_only, p_value)


@dataclass(frozen=True)
class Interval:
    effect: float  # the mean difference (same unit as the values: points for accuracy in percent)
    low: float
    high: float

    def covers_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def paired_bootstrap(differences: np.ndarray, seed: int = 0, resamples: int = RESAMPLES) -> Interval:
    """Percentile bootstrap interval of the mean of per-question differences (a - b), resampling questions."""
    differences = np.asarray(differences, float)
    if np.all(differences == differences[0]):  # every resample has the same mean
        return Interval(float(differences[0]), float(differences[0]), float(differences[0]))
    result = stats.bootstrap((differences,), np.mean, n_resamples=resamples, confidence_level=CONFIDENCE,
                             method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
    ci = result.confidence_interval
    return Interval(float(differences.mean()), float(ci.low), float(ci.high))
