"""analysis/question_level.py clusters its question-level intervals by image (analysis/clustered.py) where several
questions share one (VQA-RAD, SLAKE): each seed's SE of the mean difference is the cluster-robust one and the
descriptive bootstrap resamples images. With one question per image, or without image keys (older records), the
numbers are exactly the unclustered ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.clustered import cluster_bootstrap, cluster_se, clusters_of
from analysis.question_level import note, question_level_effects
from analysis.records import load_run_dirs
from medvqa_rl.bookkeeping.question_outcomes import local_outcomes, outcome_row

from .test_question_level import _write

IMAGES, PER_IMAGE = 60, 5
N = IMAGES * PER_IMAGE


def _arms(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """grpo's and dr_grpo's correct/incorrect: whether dr_grpo is better, worse or the same is decided per image, so
    the per-question differences are correlated within an image (what the clustering is for)."""
    rng = np.random.default_rng(seed)
    grpo = np.repeat(rng.random(IMAGES) < 0.5, PER_IMAGE)
    change = np.repeat(rng.choice([1, 0, 0, -1], IMAGES, p=[0.4, 0.3, 0.2, 0.1]), PER_IMAGE)
    dr = np.where(change == 1, True, np.where(change == -1, False, grpo))
    return grpo, dr


def _rows(seed: int, correct: np.ndarray, tokens: float, images: str | None) -> list[dict]:
    """Prediction rows; images: "shared" (5 questions an image), "own" (an image per question), None (no key)."""
    rows = []
    for i, c in enumerate(correct):
        row = {"id": f"vqa-rad-{i:06d}", "question": f"q{seed}-{i}", "options": ["a", "b"], "answer_label": "A",
               "answer_text": "a", "completion": "<answer>A</answer>", "correct": bool(c), "well_formed": True,
               "completion_tokens": tokens + (i // PER_IMAGE) % 4, "judge_verdict": float(c)}
        if images is not None:
            row["image_key"] = f"img-{seed}-{i // PER_IMAGE if images == 'shared' else i}"
        rows.append(row)
    return rows


def _sweep(root, images: str | None, seeds: int = 3, gz: bool = False):
    for seed in range(seeds):
        grpo, dr = _arms(seed)
        for bias, correct, tokens in (("grpo", grpo, 20.0), ("dr_grpo", dr, 25.0)):
            _write(root / f"bias={bias},seed={seed}", bias, seed, _rows(seed, correct, tokens, images),
                   gz=gz and bias == "dr_grpo")
    return root


def _effects(root) -> pd.DataFrame:
    runs, _ = load_run_dirs([root])
    return question_level_effects(runs, ("bias",))


@pytest.mark.parametrize("seeds", [1, 3])
def test_questions_sharing_an_image_get_wider_intervals_than_independent_questions(tmp_path, seeds):
    shared = _effects(_sweep(tmp_path / "shared", "shared", seeds)).set_index(["test_set", "metric"])
    independent = _effects(_sweep(tmp_path / "independent", None, seeds)).set_index(["test_set", "metric"])
    for metric in ("accuracy", "judge_score"):
        a, b = shared.loc[("in-domain", metric)], independent.loc[("in-domain", metric)]
        if seeds == 1:  # the same differences: only their uncertainty differs (Hartung-Knapp weights by the SEs)
            assert a["effect"] == pytest.approx(b["effect"])
        assert a["question_se"] > 1.5 * b["question_se"]  # ~sqrt(5) with differences constant within an image
        assert a["high"] - a["low"] > b["high"] - b["low"]
        assert a["question_high"] - a["question_low"] > 1.5 * (b["question_high"] - b["question_low"])
        assert f"questions share images: {IMAGES} images for {N} questions" in a["note"]
        assert "images" not in b["note"]
    one = shared.loc[("in-domain", "accuracy")]
    if seeds == 1:  # the paired t over questions: the cluster-robust SE on images - 1 df
        assert one["df"] == IMAGES - 1
    else:  # each seed's cluster-robust SE feeds Hartung-Knapp: question_se is their root mean square / sqrt(k)
        ses = []
        for seed in range(seeds):
            grpo, dr = _arms(seed)
            d = 100.0 * (dr.astype(float) - grpo)
            ses.append(cluster_se(d, clusters_of([f"{i // PER_IMAGE}" for i in range(N)])))
        assert one["question_se"] == pytest.approx(np.sqrt(np.mean(np.square(ses)) / seeds))


def test_one_question_per_image_gives_exactly_the_unclustered_numbers(tmp_path):
    for seeds in (1, 3):
        own = _effects(_sweep(tmp_path / f"own{seeds}", "own", seeds, gz=True))
        none = _effects(_sweep(tmp_path / f"none{seeds}", None, seeds))
        pd.testing.assert_frame_equal(own, none, check_exact=True)
        assert not own.attrs["clustered"] and not none.attrs["clustered"]
        assert note(family=own.attrs["family"]) == note(family=none.attrs["family"], clustered=False)


def test_the_one_seed_question_ci_is_the_cluster_bootstrap(tmp_path):
    frame = _effects(_sweep(tmp_path / "shared", "shared", seeds=1)).set_index(["test_set", "metric"])
    row = frame.loc[("in-domain", "accuracy")]
    grpo, dr = _arms(0)
    interval = cluster_bootstrap(100.0 * (dr.astype(float) - grpo), clusters_of([i // PER_IMAGE for i in range(N)]))
    assert (row["question_low"], row["question_high"]) == pytest.approx((interval.low, interval.high))
    assert frame.attrs["clustered"]
    assert "cluster-robust by image" in note(clustered=True) and "cluster-robust" not in note()


def test_outcome_rows_keep_the_image_key_and_older_rows_read_without_one(tmp_path):
    prediction = _rows(0, np.array([True]), 10.0, "shared")[0]
    assert outcome_row(prediction)["image_key"] == "img-0-0"
    del prediction["image_key"]
    assert "image_key" not in outcome_row(prediction)
    root = _sweep(tmp_path / "slim", "shared", seeds=1, gz=True)  # dr_grpo's record is a slim-style .gz
    rows = local_outcomes(str(root / "bias=dr_grpo,seed=0"))["in-domain"].values()
    assert {r["image_key"] for r in rows} == {f"img-0-{j}" for j in range(IMAGES)}


def test_the_wandb_outcomes_table_keeps_the_image_key_and_older_tables_read_without_one():
    """Tables read back from W&B (analysis --wandb) cluster by image as the local records do."""
    from medvqa_rl.bookkeeping.question_outcomes import outcome_table_rows, outcomes_from_table

    predictions = {None: _rows(0, np.array([True, False]), 10.0, "shared")}
    columns, data = outcome_table_rows(predictions)
    assert "image_key" in columns
    read = outcomes_from_table({"columns": columns, "data": data})["in-domain"]
    assert [r["image_key"] for r in read.values()] == [p["image_key"] for p in predictions[None]]
    assert [r["correct"] for r in read.values()] == [True, False]
    keep = [i for i, c in enumerate(columns) if c != "image_key"]  # a Table logged before the column existed
    older = outcomes_from_table({"columns": [columns[i] for i in keep], "data": [[row[i] for i in keep] for row in data]})
    assert all("image_key" not in r for r in older["in-domain"].values())
