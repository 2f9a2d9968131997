"""analysis/multiplicity.py: Holm and BH on a hand-computed family; rows without a test stay out of it."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.multiplicity import adjust, family_size


def test_holm_on_a_hand_computed_family():
    # Sorted: 0.01 x 4 = 0.04; 0.02 x 3 = 0.06; 0.03 x 2 = 0.06 (kept monotone); 0.2 x 1 = 0.2.
    p = [0.03, 0.01, 0.2, 0.02]
    assert adjust(p, "holm") == pytest.approx([0.06, 0.04, 0.2, 0.06])
    # Only the smallest survives at 0.05, though three raw p-values are below it.
    assert (adjust(p, "holm") < 0.05).tolist() == [False, True, False, False]


def test_bh_and_none_on_the_same_family():
    p = [0.03, 0.01, 0.2, 0.02]
    # BH: p x 4 / rank, then the running minimum from the top: 0.04, 0.04, 0.04, 0.2.
    assert adjust(p, "bh") == pytest.approx([0.04, 0.04, 0.2, 0.04])
    assert adjust(p, "none") == pytest.approx(p)


def test_rows_without_a_test_are_not_in_the_family():
    p = [0.01, np.nan, 0.04]
    adjusted = adjust(p, "holm")
    assert adjusted[0] == pytest.approx(0.02) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert family_size(p) == 2
    assert np.isnan(adjust([np.nan], "holm")).all()
    with pytest.raises(ValueError, match="holm, bh, none"):
        adjust(p, "bonferroni")
