"""analysis/question_level.py on crafted run records: the question-level paired tests of a study's comparisons,
read from predictions.jsonl (and the slim records' predictions.jsonl.gz), their numbers checked against the
records, the verdict words, and arms scored on other questions refused by name."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.__main__ import main
from analysis.question_level import question_level_effects, verdict
from medvqa_rl.bookkeeping.question_outcomes import local_outcomes
from analysis.records import load_run_dirs
from analysis.seed_level import question_se, seed_level
from analysis.significance import mcnemar_exact, paired_bootstrap

from .test_analysis import _metrics, _write_run

N = 200


def _predictions(seed: int, correct: np.ndarray, tokens: float, asked: str = "q") -> list[dict]:
    return [{"id": f"synthetic-test-{i:06d}", "question": f"{asked}{seed}-{i}", "options": ["a", "b"],
             "answer_label": "A", "answer_text": "a", "completion": "<answer>A</answer>", "correct": bool(c),
             "well_formed": True, "completion_tokens": tokens + i % 3, "judge_verdict": float(c)}
            for i, c in enumerate(correct)]


def _write(run_dir, bias: str, seed: int, predictions: list[dict], gz: bool = False, extra: dict | None = None):
    accuracy = 100.0 * np.mean([p["correct"] for p in predictions])
    tokens = float(np.mean([p["completion_tokens"] for p in predictions]))
    _write_run(run_dir, ["sweep=bias", f"bias={bias}", f"seed={seed}"],
               _metrics(accuracy, **{"test/completion_tokens": tokens, "test/judge_score": accuracy}))
    lines = "".join(json.dumps(p) + "\n" for p in predictions)
    if gz:
        with gzip.open(run_dir / "predictions.jsonl.gz", "wt") as f:
            f.write(lines)
    else:
        (run_dir / "predictions.jsonl").write_text(lines)
    for name, rows in (extra or {}).items():
        folder = run_dir / "test_sets" / name
        folder.mkdir(parents=True)
        (folder / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in rows))


def _outcomes(seed: int, gain: float):
    """grpo's and dr_grpo's correct/incorrect at one seed: dr_grpo fixes a `gain` share of grpo's errors."""
    rng = np.random.default_rng(seed)
    grpo = rng.random(N) < 0.5
    return grpo, grpo | (rng.random(N) < gain)


@pytest.fixture
def sweep(tmp_path):
    """A 3-seed bias sweep whose dr_grpo answers more questions right at every seed, plus an OOD set where the
    arms are equally good."""
    root = tmp_path / "sweep"
    for seed in range(3):
        grpo, dr = _outcomes(seed, 0.3)
        ood = np.random.default_rng(10 + seed).random(N) < 0.5
        for bias, correct, tokens in (("grpo", grpo, 20.0), ("dr_grpo", dr, 25.0)):
            _write(root / f"bias={bias},seed={seed}", bias, seed, _predictions(seed, correct, tokens),
                   gz=bias == "dr_grpo", extra={"shifted": _predictions(seed, ood, tokens, asked="shifted")})
    return root


def test_the_tests_read_the_records_and_match_the_seed_level_effects(sweep):
    runs, _ = load_run_dirs([sweep])
    frame = question_level_effects(runs, ("bias",)).set_index(["test_set", "metric"])
    assert set(frame.index) == {(s, m) for s in ("in-domain", "shifted")
                                for m in ("accuracy", "judge_score", "completion_tokens")}
    row = frame.loc[("in-domain", "accuracy")]
    seeds = [_outcomes(seed, 0.3) for seed in range(3)]
    per_seed = [100.0 * (dr.mean() - grpo.mean()) for grpo, dr in seeds]
    assert (row["factor"], row["level"], row["reference"], row["n"], row["seeds"]) == ("bias", "dr_grpo", "grpo", 3,
                                                                                        "0,1,2")
    # the random-effects mean: the paired table's plain mean over seeds, weighted by the seeds' question noise
    assert row["effect"] == pytest.approx(np.mean(per_seed), abs=0.5)
    assert row["p_mcnemar"] == pytest.approx(mcnemar_exact(np.concatenate([d for _, d in seeds]),
                                                           np.concatenate([g for g, _ in seeds])).p_value)
    pooled = paired_bootstrap(np.concatenate([100.0 * (d.astype(float) - g) for g, d in seeds]))
    assert (row["question_low"], row["question_high"]) == pytest.approx((pooled.low, pooled.high))
    differences = [100.0 * (d.astype(float) - g) for g, d in seeds]
    decided = seed_level(np.array([x.mean() for x in differences]), np.array([question_se(x) for x in differences]))
    assert (row["effect"], row["low"], row["high"], row["p_value"], row["df"]) == pytest.approx(
        (decided.effect, decided.low, decided.high, decided.p_value, 2))
    assert row["low"] > 0 and row["family"] == 2  # accuracy's family: in-domain and shifted
    assert row["p_adjusted"] == pytest.approx(min(1.0, 2 * row["p_value"]))  # Holm: the smaller of two p x 2
    assert row["verdict"] == f"higher: resolved at n = 3 seeds (Holm p = {row['p_adjusted']:.2g})"
    assert row["per_seed"].startswith(f"0: {per_seed[0]:+.2f} [") and row["per_seed"].count("p=") == 3
    assert frame.loc[("in-domain", "completion_tokens"), "effect"] == pytest.approx(5.0)
    assert math.isnan(frame.loc[("in-domain", "completion_tokens"), "p_mcnemar"])  # McNemar: accuracy only
    assert frame.loc[("shifted", "accuracy"), "effect"] == 0.0
    assert frame.loc[("shifted", "accuracy"), "verdict"].startswith("not resolved at n = 3 seeds (detectable: about ")


def test_the_report_writes_and_prints_the_question_level_table(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--runs", str(sweep), "--out", str(out)]) == 0
    table = pd.read_csv(out / "bias_questions.csv")
    paired = pd.read_csv(out / "bias_paired.csv").iloc[0]
    accuracy = table[(table["test_set"] == "in-domain") & (table["metric"] == "accuracy")].iloc[0]
    # metrics.json and predictions agree (equal question SEs: the random-effects mean is the plain mean)
    assert accuracy["effect"] == pytest.approx(paired["test/accuracy_mean"], abs=0.5)
    printed = capsys.readouterr().out
    assert "GRPO vs Dr.GRPO: verdicts (paired, per test set and metric)" in printed
    assert "higher: resolved at n = 3 seeds (Holm p = " in printed and "not resolved at n = 3 seeds" in printed
    html = (out / "index.html").read_text()
    assert "Verdicts" in html and "McNemar p" in html and "Holm p" in html
    assert r"dr\_grpo" in (out / "bias_questions.tex").read_text()


def test_one_seed_gets_question_level_intervals_and_says_seed_noise_is_unmeasured(tmp_path):
    grpo, dr = _outcomes(0, 0.3)
    for bias, correct in (("grpo", grpo), ("dr_grpo", dr)):
        _write(tmp_path / f"bias={bias},seed=0", bias, 0, _predictions(0, correct, 20.0))
    runs, _ = load_run_dirs([tmp_path])
    row = question_level_effects(runs, ("bias",)).set_index("metric").loc["accuracy"]
    assert row["n"] == 1 and math.isnan(row["seed_sd"]) and math.isnan(row["detectable"])
    assert row["question_low"] > 0 and row["low"] > 0 and row["df"] == N - 1
    assert row["verdict"] == ("not resolved: one seed, run-to-run noise unmeasured (higher, beyond evaluation noise: "
                              f"Holm p = {row['p_adjusted']:.2g})")


def test_arms_scored_on_other_questions_are_refused_by_name(tmp_path):
    """Same ids, other questions (another data seed): the row names the mismatch and has no statistics."""
    grpo, dr = _outcomes(0, 0.3)
    _write(tmp_path / "bias=grpo,seed=0", "grpo", 0, _predictions(0, grpo, 20.0))
    _write(tmp_path / "bias=dr_grpo,seed=0", "dr_grpo", 0, _predictions(0, dr, 20.0, asked="other data seed "))
    runs, _ = load_run_dirs([tmp_path])
    frame = question_level_effects(runs, ("bias",))
    assert len(frame) == 3 and frame["effect"].isna().all()
    assert frame["note"].str.contains(r"not scored on the same test questions \(200 only in the first").all()
    assert frame["note"].str.contains("dataset.test_size or data seed").all()


def test_runs_without_predictions_get_no_question_level_table(tmp_path, caplog):
    _write_run(tmp_path / "bias=grpo,seed=0", ["sweep=bias", "bias=grpo", "seed=0"], _metrics(50.0))
    _write_run(tmp_path / "bias=dr_grpo,seed=0", ["sweep=bias", "bias=dr_grpo", "seed=0"], _metrics(55.0))
    runs, _ = load_run_dirs([tmp_path])
    frame = question_level_effects(runs, ("bias",))
    assert frame.empty and frame.attrs["without_outcomes"] == 2
    assert "2 run(s) hold no per-question outcomes" in caplog.text


def test_a_slim_records_gzip_reads_as_the_full_predictions(tmp_path):
    rows = _predictions(0, np.array([True, False, True]), 10.0)
    _write(tmp_path / "full", "grpo", 0, rows)
    _write(tmp_path / "slim", "grpo", 0, rows, gz=True)
    assert local_outcomes(str(tmp_path / "full")) == local_outcomes(str(tmp_path / "slim"))
    assert list(local_outcomes(str(tmp_path / "full"))["in-domain"].values())[1]["correct"] is False


def test_the_verdict_words():
    assert verdict(2.0, 0.2, 3, 9.84) == "not resolved at n = 3 seeds (detectable: about 9.8 points; Holm p = 0.2)"
    assert verdict(-3.0, 0.001, 3, 9.8) == "lower: resolved at n = 3 seeds (Holm p = 0.001)"
    assert verdict(0.3, 0.5, 2, 4.44, "completion_tokens") == ("not resolved at n = 2 seeds (detectable: about 4.4 "
                                                               "tokens; Holm p = 0.5)")
    assert verdict(0.3, 0.5, 2, float("nan"), "similarity", "BH q") == ("not resolved at n = 2 seeds (detectable: not "
                                                                         "estimable; BH q = 0.5)")
    assert verdict(-3.0, 1e-9, 1) == ("not resolved: one seed, run-to-run noise unmeasured (lower, beyond evaluation "
                                      "noise: Holm p = 1.0e-09)")
    assert verdict(2.0, 0.3, 1) == ("not resolved: one seed, run-to-run noise unmeasured (not beyond evaluation noise "
                                    "either: Holm p = 0.3)")
    assert not any("within" in verdict(e, p, k, 5.0) for e in (-1, 1) for p in (0.01, 0.5) for k in (1, 3))


def test_seeds_missing_some_combinations_are_left_out_by_name(tmp_path):
    """A factorial-like study (two factors) where seed 1 has only some cells: the seed-level test uses the seeds that
    pair every combination, and the row says which seed was left out and why."""
    from analysis.question_level import _complete_seeds

    index = pd.MultiIndex.from_tuples([("none", 0), ("ecr", 0), ("none", 1)], names=["length_reward", "seed"])
    pairs = pd.DataFrame({"dr_grpo": [["a"], ["b"], ["c"]], "grpo": [["d"], ["e"], ["f"]]}, index=index)
    kept, note = _complete_seeds(pairs)
    assert list(kept.index) == [("none", 0), ("ecr", 0)]
    assert note == "seeds left out, not every combination of the other factors paired: 1 (1 of 2 combinations)"


def test_the_correction_option_changes_the_adjusted_column(sweep, tmp_path):
    for correction in ("holm", "none"):
        assert main(["--runs", str(sweep), "--out", str(tmp_path / correction), "--correction", correction]) == 0
    holm, none = (pd.read_csv(tmp_path / c / "bias_questions.csv") for c in ("holm", "none"))
    assert (none["p_adjusted"] == none["p_value"]).all() and (holm["p_adjusted"] >= holm["p_value"]).all()
    assert "p (unadjusted)" in (tmp_path / "none" / "bias_questions.md").read_text()


def test_slim_records_regenerate_the_same_tables(sweep, tmp_path):
    """The committed studies' form: metrics, config and gzipped outcomes only, and every table the same."""
    from analysis.slim_records import main as slim

    (sweep / "bias=grpo,seed=0" / "model").mkdir()
    (sweep / "bias=grpo,seed=0" / "model" / "weights.bin").write_bytes(b"x" * 1000)
    assert slim([str(sweep), str(tmp_path / "slim")]) == 0
    kept = {p.relative_to(tmp_path / "slim").as_posix() for p in (tmp_path / "slim").rglob("*") if p.is_file()}
    assert "bias=grpo,seed=0/predictions.jsonl.gz" in kept and "bias=grpo,seed=0/metrics.json" in kept
    assert "bias=grpo,seed=0/test_sets/shifted/predictions.jsonl.gz" in kept
    assert not any("model" in k or k.endswith("predictions.jsonl") for k in kept)
    for source, out in ((sweep, tmp_path / "full"), (tmp_path / "slim", tmp_path / "from_slim")):
        assert main(["--runs", str(source), "--out", str(out)]) == 0
    for name in ("bias.csv", "bias_paired.csv", "bias_questions.csv"):
        assert (tmp_path / "full" / name).read_text() == (tmp_path / "from_slim" / name).read_text(), name
    again = tmp_path / "again"
    slim([str(sweep), str(again)])
    gz = "bias=grpo,seed=0/predictions.jsonl.gz"
    assert (again / gz).read_bytes() == (tmp_path / "slim" / gz).read_bytes()  # same outcomes, same bytes


def test_seeds_option_shows_what_one_seed_would_have_shown(sweep, tmp_path):
    assert main(["--runs", str(sweep), "--out", str(tmp_path / "one"), "--seeds", "0"]) == 0
    table = pd.read_csv(tmp_path / "one" / "bias_questions.csv")
    assert set(table["n"]) == {1} and set(table["seeds"].astype(str)) == {"0"}
    assert pd.read_csv(tmp_path / "one" / "runs.csv")["seed"].tolist() == [0, 0]
