"""Question-level intervals when several questions share an image (VQA-RAD, SLAKE: a scan asked about 5-10 times):
the questions of one image are not independent, so the interval resamples images, not questions (a cluster
bootstrap), and the standard error is the cluster-robust one. With one question per image (the synthetic set) both
reduce to the ordinary ones. Each prediction row carries image_key (a digest of its image: medvqa_rl's evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from analysis.significance import CONFIDENCE, RESAMPLES, Interval


def clusters_of(keys: Sequence[str | None]) -> np.ndarray:
    """Integer cluster labels from image keys; a row without a key (an older record) is a cluster of its own."""
    labels, out = {}, []
    for i, key in enumerate(keys):
        out.append(labels.setdefault(key if key is not None else f"__row{i}", len(labels)))
    return np.asarray(out)


def cluster_se(differences: np.ndarray, clusters: np.ndarray) -> float:
    """Cluster-robust standard error of the mean of per-question differences (CR1: the sum of squared per-cluster
    residual sums, times G / (G - 1)); 0 with fewer than two clusters."""
    differences = np.asarray(differences, float)
    n, groups = len(differences), np.unique(clusters)
    if len(groups) < 2:
        return 0.0
    residual = differences - differences.mean()
    sums = np.bincount(np.searchsorted(groups, clusters), weights=residual)
    return float(math.sqrt(len(groups) / (len(groups) - 1) * np.sum(sums ** 2)) / n)


def cluster_bootstrap(differences: np.ndarray, clusters: np.ndarray, seed: int = 0,
                      resamples: int = RESAMPLES) -> Interval:
    """Percentile bootstrap interval of the mean difference, resampling clusters (images) with replacement and
    keeping each drawn image's questions together."""
    differences = np.asarray(differences, float)
    if np.all(differences == differences[0]):
        return Interval(float(differences[0]), float(differences[0]), float(differences[0]))
    groups, index = np.unique(clusters, return_inverse=True)
    sums = np.bincount(index, weights=differences)
    counts = np.bincount(index)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(groups), size=(resamples, len(groups)))
    means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(differences.mean()), float(low), float(high))
