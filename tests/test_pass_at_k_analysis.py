"""Issue 39, items 4-5: the sharpening summary and pass@k curves from run folders, and image-clustered intervals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.clustered import cluster_bootstrap, cluster_se, clusters_of
from analysis.pass_at_k import pass_columns, sharpening, write_sharpening
from medvqa_rl.bookkeeping.question_outcomes import IN_DOMAIN


def _write(folder, name, samples):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"q{i}", "question": f"q{i}?", "options": ["a", "b"], "answer_label": "A", "answer_text": "a",
             "correct": s[0], "image_key": f"img{i // 2}", "samples_correct": s,
             "samples_answers": ["A" if ok else "B" for ok in s]} for i, s in enumerate(samples)]
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_sharpening_pairs_trained_and_init_per_question(tmp_path):
    run = tmp_path / "run"
    # init: each question right in 1 of 4 samples; trained: 2 of 4 right on the first two, 0 of 4 on the last two.
    _write(run, "init_predictions.jsonl", [[True, False, False, False]] * 4)
    _write(run, "predictions.jsonl", [[True, True, False, False]] * 2 + [[False] * 4] * 2)
    runs = pd.DataFrame([{"run": str(run), "seed": 0, "bias": "grpo", "test/pass@1": 25.0, "test/pass@4": 50.0,
                          "init/test/pass@1": 25.0, "init/test/pass@4": 100.0}])
    frame = sharpening(runs, ("bias",))
    at1 = frame[frame["k"] == 1].iloc[0]
    at4 = frame[frame["k"] == 4].iloc[0]
    assert at1["init"] == pytest.approx(25.0) and at1["trained"] == pytest.approx(25.0)
    assert at1["effect"] == pytest.approx(0.0)
    assert at4["init"] == pytest.approx(100.0) and at4["trained"] == pytest.approx(50.0)
    assert at4["effect"] == pytest.approx(-50.0)
    assert at4["images"] == 2 and at4["questions"] == 4 and at4["test_set"] == IN_DOMAIN
    written = write_sharpening(runs, ("bias",), "Bias", "bias", tmp_path / "out")
    assert (tmp_path / "out" / "bias_sharpening.md").exists()
    assert (tmp_path / "out" / "plots" / f"bias_pass_at_k_{IN_DOMAIN}.png") in written


def test_pass_columns_find_each_sets_k():
    columns = ["test/pass@1", "test/pass@8", "test/pass@2", "test/blind/pass@1", "init/test/pass@1", "test/accuracy"]
    assert pass_columns(columns) == {IN_DOMAIN: [1, 2, 8], "blind": [1]}


def test_cluster_se_is_the_plain_se_with_one_question_per_image_and_wider_when_images_repeat():
    rng = np.random.default_rng(0)
    d = rng.normal(size=40)
    plain = d.std(ddof=1) / np.sqrt(len(d))
    assert cluster_se(d, np.arange(40)) == pytest.approx(plain, rel=1e-9)
    shared = np.repeat(rng.normal(size=10), 4)  # four questions per image, answered alike
    assert cluster_se(shared, np.repeat(np.arange(10), 4)) > 1.5 * shared.std(ddof=1) / np.sqrt(40)


def test_cluster_bootstrap_resamples_images():
    d = np.repeat([1.0, -1.0, 2.0, 0.0, 3.0], 6)  # five images, six questions each
    wide = cluster_bootstrap(d, np.repeat(np.arange(5), 6), resamples=4000)
    narrow = cluster_bootstrap(d, np.arange(30), resamples=4000)
    assert wide.effect == pytest.approx(1.0)
    assert (wide.high - wide.low) > 1.5 * (narrow.high - narrow.low)
    assert list(clusters_of(["a", "b", "a", None, None])) == [0, 1, 0, 2, 3]


def test_slim_records_keep_the_init_samples_the_sharpening_pairs(tmp_path):
    from analysis.slim_records import slim_run

    run = tmp_path / "run"
    _write(run, "init_predictions.jsonl", [[True, False, False, False]] * 4)
    _write(run, "predictions.jsonl", [[True, True, False, False]] * 4)
    slim_run(run, tmp_path / "slim")
    runs = pd.DataFrame([{"run": str(tmp_path / "slim"), "seed": 0, "test/pass@1": 50.0, "init/test/pass@1": 25.0}])
    frame = sharpening(runs, ())
    assert frame[frame["k"] == 1].iloc[0]["effect"] == pytest.approx(25.0)
    assert frame[frame["k"] == 4].iloc[0]["effect"] == pytest.approx(0.0)


def test_a_study_whose_runs_did_not_sample_draws_no_pass_at_k_plot(tmp_path):
    # Tables built over several studies carry every study's columns: here the pass@k ones are all empty.
    runs = pd.DataFrame([{"run": str(tmp_path / "run"), "seed": 0, "bias": "grpo", "test/accuracy": 60.0,
                          "test/pass@1": np.nan, "test/blind/pass@8": np.nan, "init/test/pass@1": np.nan}])
    assert write_sharpening(runs, ("bias",), "Bias", "bias", tmp_path / "out") == []
    assert not (tmp_path / "out").exists()
