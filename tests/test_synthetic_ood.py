"""The embedded default's out-of-distribution test set (dataset=synthetic_ood, evaluated by default as
test/synthetic_ood/*): the in-domain test questions, their scans acquired by another scanner, exactly as
medvqa_rl/data/synthetic.py SHIFTS documents; and what the shipped tiny instruct does on it."""

from __future__ import annotations

import numpy as np
import pytest

from medvqa_rl.data.splits import load_test_split
from medvqa_rl.data.synthetic import SHIFTS, _gaussian_blur, make_split
from medvqa_rl.models.init_probe import probe_init
from medvqa_rl.models.loading import load_model_and_processor
from medvqa_rl.models.shipped_tiny import SHIPPED_DIR

from .conftest import compose_config

TEXT_FIELDS = ("id", "question", "options", "answer_label", "answer_text", "question_type", "rationale", "findings")


def _pixels(record) -> np.ndarray:
    return np.asarray(record["image"])[..., 0] / 255.0


def test_the_default_run_evaluates_the_ood_set_and_real_datasets_do_not():
    ood = compose_config().eval.test_sets.synthetic_ood
    assert (ood.name, ood.shift, ood.test_size, ood.seed) == ("synthetic_ood", "scanner", 500, 0)
    assert compose_config().dataset.shift is None
    assert dict(compose_config(["dataset=vqa_rad"]).eval.test_sets) == {}
    assert dict(compose_config(["test_sets=none"]).eval.test_sets) == {}


def test_the_ood_set_is_the_in_domain_questions_seen_by_another_scanner():
    cfg = compose_config(["eval.test_sets.synthetic_ood.test_size=200"])
    shifted = load_test_split(cfg.eval.test_sets.synthetic_ood)
    in_domain = make_split("test", 200, seed=0)
    # The same questions, options, answers and ground truth, question by question (same ids): a paired comparison.
    assert all(a[k] == b[k] for a, b in zip(in_domain, shifted, strict=True) for k in TEXT_FIELDS)
    spec = SHIFTS["scanner"]
    for a, b in zip(in_domain, shifted, strict=True):
        scan, acquired = _pixels(a), _pixels(b)
        assert acquired.tobytes() != scan.tobytes()
        # Exactly the documented acquisition: blur (softer optics), gamma < 1 (brighter mid-tones), then noise of
        # the stated std; the in-domain scan's own noise and rounding aside, nothing else changes.
        expected = _gaussian_blur(scan, spec["blur"]) ** spec["gamma"]
        inside = (acquired > 0.02) & (acquired < 0.98) & (expected > 0.15) & (expected < 0.85)
        residual = (acquired - expected)[inside]
        assert abs(residual.mean()) < 0.005 and residual.std() == pytest.approx(spec["noise"], abs=0.004)
        assert acquired.mean() > scan.mean() + 0.05  # brighter, on every scan
    # The unshifted splits every stage of the tiny models trains on hold no such scan (their own seed streams and
    # no shift: the in-domain images are byte-identical to what the generator gave before shifts existed).
    trained_on = {r["image"].tobytes() for split in ("pretrain", "instruct", "train") for r in make_split(split, 200, 0)}
    assert not any(r["image"].tobytes() in trained_on for r in shifted)


def test_the_shipped_tiny_instruct_on_the_ood_set():
    """The default OOD set (seed 0, 500 questions) against the same 500 in-domain questions, greedy: measured here
    (docs/embedded_default.md), reasoning right 90.0% -> 67.2%, accuracy 36.0% -> 30.8%, format 100% -> 100%. Its
    reasoning names the right finding far less often on the other scanner's scans, and its letter, which follows
    the reasoning about a third of the time, is right less often with it."""
    model, processor = load_model_and_processor(str(SHIPPED_DIR / "instruct"))
    ood = compose_config().eval.test_sets.synthetic_ood
    in_domain = probe_init(model, processor, make_split("test", ood.test_size, seed=0))
    shifted = probe_init(model, processor, load_test_split(ood))
    assert in_domain["reasoning_right"] >= 85 and shifted["reasoning_right"] <= in_domain["reasoning_right"] - 15
    assert shifted["greedy_accuracy"] < in_domain["greedy_accuracy"]
    assert shifted["format"] >= 99  # the answer format carries over: the shift is in what it sees
