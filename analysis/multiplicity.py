"""Adjusting a table's p-values for multiplicity: a table is a family (a study's comparisons x test sets x metrics),
and every verdict reads its adjusted p (statsmodels' multipletests).

holm: family-wise error (default; valid under any dependence, and the comparisons of a study share their reference
arm); bh: false discovery rate (Benjamini-Hochberg); none: unadjusted.
"""

from __future__ import annotations

import numpy as np
from statsmodels.stats.multitest import multipletests

CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}
TITLES = {"holm": "Holm p", "bh": "BH q", "none": "p (unadjusted)"}
DEFAULT = "holm"


def adjust(p_values, correction: str = DEFAULT) -> np.ndarray:
    """Adjusted p-values in the input's order; NaN entries (rows with no test) stay NaN and are not counted in the
    family."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}")
    p = np.asarray(p_values, float)
    adjusted = np.full_like(p, np.nan)
    tested = ~np.isnan(p)
    if not tested.any():
        return adjusted
    method = CORRECTIONS[correction]
    adjusted[tested] = p[tested] if method is None else multipletests(p[tested], method=method)[1]
    return adjusted


def family_size(p_values) -> int:
    """How many tests a family holds (its rows with a p-value)."""
    return int(np.sum(~np.isnan(np.asarray(p_values, float))))
