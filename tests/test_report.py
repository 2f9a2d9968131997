"""index.html and the W&B analysis run: built from a crafted sweep folder (two studies x 2-3 levels x 3
seeds with training curves) and the same folder with failed, preempted, half-written and set-aside runs
whose records hold absurd numbers, which must show in the run list and in no mean."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from analysis.__main__ import main
from analysis.plots import curve_band
from analysis.records import FAILURE_FILE, scan_run_dirs, scan_wandb_runs
from analysis.tables import METRICS
from analysis.report import run_list

from .conftest import compose_config
from .test_analysis import T_975_DF1, T_975_DF2, FakeApi, _wandb_run

SEEDS = (0, 1, 2)
LEVELS = {"bias": ("grpo", "dr_grpo"), "length": ("none", "ecr", "cwr")}
FACTOR = {"bias": "bias", "length": "length_reward"}
GAIN = {"grpo": 0.0, "dr_grpo": 3.0, "none": 0.0, "ecr": -2.0, "cwr": 4.0}
VERSIONS = {"version/python": "3.11.7", "version/torch": "2.14.1", "version/transformers": "5.24.0",
            "version/trl": "1.16.0", "version/medvqa_rl": "0.1.0"}
ABSURD = 12345.0  # in every record that must not be counted


def accuracy(level: str, seed: int) -> float:
    return 50.0 + 6.0 * seed + GAIN[level] + 0.5 * (seed == 1 and GAIN[level] != 0)


def _metrics(level: str, seed: int) -> dict:
    acc = accuracy(level, seed)
    return {"test/accuracy": acc, "test/perplexity": 1.3 - 0.01 * seed, "test/similarity": 0.95,
            "test/judge_score": acc + 20.0, "test/completion_tokens": 12.0 + GAIN[level],
            "test/format_rate": 99.0 - seed, "init/test/accuracy": 41.2,
            "seed": seed, "train/steps": 200, "train/examples": 1600, "train/processes": 1, **VERSIONS}


def _history(level: str, seed: int) -> list[dict]:
    return [{"step": s, "reward": 0.6 + 0.002 * s + 0.05 * seed + 0.01 * GAIN[level],
             "completions/mean_length": 12.0 + 0.01 * s * GAIN[level] + seed,
             "rewards/accuracy/mean": 0.4 + (0.001 + 0.0002 * GAIN[level]) * s + 0.03 * seed}
            for s in range(10, 201, 10)]


def _run_dir(root: Path, sweep: str, level: str, seed: int, metrics: dict | None = None, history=()) -> Path:
    """A grid point's folder as a sweep leaves it: .hydra/config.yaml, then whatever the run wrote."""
    run_dir = root / f"{sweep}-v1" / f"{FACTOR[sweep]}={level},seed={seed}"
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose_config([f"sweep={sweep}", f"{FACTOR[sweep]}={level}", f"seed={seed}"]),
                   run_dir / ".hydra" / "config.yaml")
    if metrics is not None:
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    if history:
        (run_dir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    return run_dir


def write_sweeps(root: Path) -> Path:
    """The bias and length sweeps, every grid point finished."""
    for sweep, levels in LEVELS.items():
        for level in levels:
            for seed in SEEDS:
                _run_dir(root, sweep, level, seed, _metrics(level, seed), _history(level, seed))
    return root


def _failure(run_dir: Path, status: str, message: str) -> None:
    (run_dir / FAILURE_FILE).write_text(json.dumps({"status": status, "error_type": "RuntimeError",
                                                    "message": message, "traceback": "..."}))


def add_bad_runs(root: Path) -> dict[str, str]:
    """Runs that must be listed and never averaged, each holding ABSURD where a number can be;
    {path relative to root: status}."""
    absurd = {**_metrics("dr_grpo", 0), **{column: ABSURD for column, _ in METRICS}}
    absurd_history = [{"step": s, "reward": ABSURD, "completions/mean_length": ABSURD, "rewards/accuracy/mean": ABSURD}
                      for s in (10, 20)]
    failed = _run_dir(root, "bias", "dr_grpo", 3, absurd, absurd_history)  # failed after writing its metrics
    _failure(failed, "failed", "CUDA out of memory")
    preempted = _run_dir(root, "bias", "grpo", 3, history=absurd_history)
    _failure(preempted, "preempted", "SIGTERM at step 40")
    (preempted / "trainer" / "checkpoint-40").mkdir(parents=True)
    _run_dir(root, "length", "ecr", 3, history=absurd_history)  # still running, or killed: no record yet
    cut_off = _run_dir(root, "length", "cwr", 3)
    (cut_off / "metrics.json").write_text(json.dumps(absurd)[:40])
    # Earlier attempts a rerun set aside: a finished record of an older config, and a failure.
    earlier = root / "bias-v1" / "bias=grpo,seed=0" / "previous"
    (earlier / "20260101-120000").mkdir(parents=True)
    (earlier / "20260101-120000" / "metrics.json").write_text(json.dumps(absurd))
    (earlier / "20260101-120000" / "history.jsonl").write_text(json.dumps(absurd_history[0]) + "\n")
    (earlier / "20260102-090000").mkdir(parents=True)
    _failure(earlier / "20260102-090000", "failed", "judge server unreachable")
    return {"bias-v1/bias=dr_grpo,seed=3": "failed", "bias-v1/bias=grpo,seed=3": "preempted",
            "length-v1/length_reward=ecr,seed=3": "half-written", "length-v1/length_reward=cwr,seed=3": "half-written",
            "bias-v1/bias=grpo,seed=0/previous/20260101-120000": "set aside",
            "bias-v1/bias=grpo,seed=0/previous/20260102-090000": "set aside"}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(clean, dirty, bad runs): the finished sweeps, and a copy with the bad runs added."""
    clean = write_sweeps(tmp_path_factory.mktemp("clean"))
    dirty = tmp_path_factory.mktemp("dirty") / "multirun"
    shutil.copytree(clean, dirty)
    return clean, dirty, add_bad_runs(dirty)


def _report(runs: Path, out: Path, *extra: str) -> str:
    assert main(["--runs", str(runs), "--out", str(out), *extra]) == 0
    return (out / "index.html").read_text()


def _table_cells(html: str, anchor: str) -> str:
    """The HTML of one study's section."""
    start = html.index(f'<h2 id="{anchor}">')
    return html[start:html.index("<h2", start + 1)]


# --- the band of the curves ------------------------------------------------------------------------------

def test_band_is_the_t_interval_over_seeds():
    """Three seeds at 1, 2, 3 -> mean 2, half-width t(0.975, 2) * 1 / sqrt(3); equal seeds -> 0; two runs of
    one seed count once; a step only one seed logged has no band."""
    steps = pd.DataFrame([
        {"step": 10, "seed": 0, "v": 1.0}, {"step": 10, "seed": 1, "v": 2.0}, {"step": 10, "seed": 2, "v": 3.0},
        {"step": 20, "seed": 0, "v": 4.0}, {"step": 20, "seed": 1, "v": 4.0}, {"step": 20, "seed": 2, "v": 4.0},
        {"step": 30, "seed": 0, "v": 2.0}, {"step": 30, "seed": 0, "v": 4.0}, {"step": 30, "seed": 1, "v": 5.0},
        {"step": 40, "seed": 2, "v": 7.0}, {"step": 40, "seed": 1, "v": None},
    ])
    band = curve_band(steps, "v")
    assert list(band.index) == [10, 20, 30, 40]
    assert band.loc[10, "mean"] == 2.0 and band.loc[10, "ci95"] == pytest.approx(T_975_DF2 / math.sqrt(3))
    assert band.loc[20].tolist() == [4.0, 0.0, 3]
    # seed 0's two runs average to 3; seeds 3 and 5: mean 4, sd sqrt(2), n 2.
    assert band.loc[30, "mean"] == 4.0 and band.loc[30, "ci95"] == pytest.approx(T_975_DF1 * math.sqrt(2) / math.sqrt(2))
    assert band.loc[40, "mean"] == 7.0 and band.loc[40, "n"] == 1 and math.isnan(band.loc[40, "ci95"])


# --- the page ----------------------------------------------------------------------------------------------

def test_index_shows_every_study_table_with_the_csv_numbers(sweeps, tmp_path):
    clean, _, _ = sweeps
    out = tmp_path / "report"
    html = _report(clean, out)
    for study, levels in LEVELS.items():
        arms = pd.read_csv(out / f"{study}.csv")
        paired = pd.read_csv(out / f"{study}_paired.csv")
        assert len(arms) == len(levels) and len(paired) == len(levels) - 1
        section = _table_cells(html, study)
        for frame in (arms, paired):
            for _, row in frame.iterrows():
                for column, _ in METRICS:
                    assert f"{row[f'{column}_mean']:.2f} ± {row[f'{column}_ci95']:.2f}" in section, (study, column)
        expected = {level: sum(accuracy(level, s) for s in SEEDS) / 3 for level in levels}
        assert arms.set_index(FACTOR[study])["test/accuracy_mean"].to_dict() == pytest.approx(expected)
        assert "paired by seed" in section and "Per arm" in section
    assert (pd.read_csv(out / "bias_paired.csv").iloc[0][["level", "test/accuracy_mean", "n"]].tolist()
            == ["dr_grpo", pytest.approx(3.0 + 0.5 / 3), 3])


def test_index_links_curves_and_records_that_exist(sweeps, tmp_path):
    clean, _, _ = sweeps
    out = tmp_path / "report"
    html = _report(clean, out)
    images = re.findall(r'<img src="([^"]+)"', html)
    # bias: 1 factor x 3 curves; length: the same.
    assert len(images) == 6 and "plots/length_by_length_reward_train_accuracy.png" in images
    links = re.findall(r'<a href="([^"#]+)"', html)
    records = [link for link in links if link.endswith("metrics.json")]
    assert len(records) == 15  # every finished run
    for link in images + links:
        assert (out / link).resolve().is_file(), link
    assert "line: mean over seeds; band: 95% CI over seeds" in html


def test_index_lists_the_environment(sweeps, tmp_path):
    clean, _, _ = sweeps
    html = _report(clean, tmp_path / "report")
    environment = html[html.index('id="environment"'):]
    for name, value in [("seeds", "0, 1, 2"), ("training steps", "200"), ("training examples", "1600"),
                        ("processes", "1"), ("torch", "2.14.1"), ("transformers", "5.24.0"), ("trl", "1.16.0")]:
        assert f"<tr><th>{name}</th><td>{value}</td></tr>" in environment


def test_bad_runs_are_listed_and_move_no_mean(sweeps, tmp_path):
    """Failed (with metrics.json), preempted, half-written (none, cut off) and set-aside records: in the run
    list with their status, and every table, curve and count equals the clean sweep's."""
    clean, dirty, bad = sweeps
    clean_html, dirty_html = _report(clean, tmp_path / "clean"), _report(dirty, tmp_path / "dirty")
    for name in ("bias", "bias_paired", "length", "length_paired"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "clean" / f"{name}.csv"),
                                      pd.read_csv(tmp_path / "dirty" / f"{name}.csv"))
    assert len(pd.read_csv(tmp_path / "dirty" / "runs.csv")) == 15
    for study in LEVELS:
        assert _table_cells(dirty_html, study).count("<tr>") == _table_cells(clean_html, study).count("<tr>")
        assert f"{ABSURD:.2f}" not in _table_cells(dirty_html, study)

    records = scan_run_dirs([dirty])
    assert len(records.runs) == 15 and records.history[["mean_reward", "completion_length"]].max().max() < 100
    assert records.history["train_accuracy"].max() < 1
    listed = {str(Path(r).relative_to(dirty)): s for r, s in zip(records.excluded["run"], records.excluded["status"])}
    assert listed == bad

    runs = dirty_html[dirty_html.index('<h2 id="runs">'):dirty_html.index('<h2 id="environment">')]
    rows = re.findall(r"<tr class=\"(\w[\w-]*)\">\s*<td>([^<]+)</td>(.*?)</tr>", runs, re.S)
    by_name = {name: (cls, body) for cls, name, body in rows}  # names within their sweep's folder
    assert len(by_name) == 15 + len(bad)
    for path, status in bad.items():
        cls, body = by_name[path.split("/", 1)[1]]
        assert cls == "left-out" and f">{status}</span>" in body, path
    failed = by_name["bias=dr_grpo,seed=3"][1]
    assert "CUDA out of memory (its metrics.json is not counted)" in failed and f"({ABSURD:.2f})" in failed
    assert "a rerun resumes" in by_name["bias=grpo,seed=3"][1]
    assert "metrics.json cut off" in by_name["length_reward=cwr,seed=3"][1]
    assert "was finished" in by_name["bias=grpo,seed=0/previous/20260101-120000"][1]
    assert "was failed: RuntimeError: judge server unreachable" in by_name[
        "bias=grpo,seed=0/previous/20260102-090000"][1]
    assert "15 finished runs of 21 listed; 2 half-written, 2 set aside, 1 failed, 1 preempted" in " ".join(
        dirty_html.split())
    assert "left out: 2 set aside, 1 failed, 1 preempted" in " ".join(_table_cells(dirty_html, "bias").split())
    for link in re.findall(r'<a href="([^"#]+)"', runs):  # failure.json, the cut-off metrics.json, ...
        assert (tmp_path / "dirty" / link).resolve().is_file(), link


def test_only_failed_runs_still_give_the_run_list(tmp_path, capsys):
    add_bad_runs(tmp_path / "runs")
    html = _report(tmp_path / "runs", tmp_path / "out")
    assert "No study could be filled" in html and "no run finished" in html
    assert html.count('class="left-out"') == 4 and 'class="finished"' not in html
    assert not list((tmp_path / "out").glob("*_paired.csv"))
    assert "no study could be filled: no run finished" in capsys.readouterr().out


def test_a_folder_without_runs_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty" / "not_a_run").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "no run directory (a folder with .hydra/config.yaml) was found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_failure_file_name_is_the_runs_own():
    from medvqa_rl.reuse.resumable import FAILURE_FILE as WRITTEN

    assert FAILURE_FILE == WRITTEN


def test_wandb_source_lists_unfinished_runs_and_reads_the_accuracy_curve():
    runs = [_wandb_run("a", "accuracy", 0, 40.0), _wandb_run("b", "semantic", 0, 50.0),
            _wandb_run("c", "semantic", 1, 0.0, state="crashed")]
    runs[0]._history[0]["train/rewards/accuracy/mean"] = 0.25  # only on one step: the other rows stay
    records = scan_wandb_runs("lab/medvqa", api=FakeApi(runs))
    assert sorted(records.runs["run"]) == ["a", "b"]
    assert records.excluded[["run", "status", "wandb_group"]].values.tolist() == [["c", "crashed", "semantic-v1"]]
    assert records.wandb == {"project": "medvqa", "entity": "lab"}
    a = records.history[records.history["run"] == "a"]
    assert a["mean_reward"].tolist() == pytest.approx([1.5, 2.5])
    assert a["train_accuracy"].iloc[0] == 0.25 and math.isnan(a["train_accuracy"].iloc[1])


# --- W&B -----------------------------------------------------------------------------------------------

def test_wandb_offline_analysis_run_per_sweep(sweeps, tmp_path, capsys, monkeypatch):
    from analysis import wandb_log

    logged = []
    original = wandb_log.log_analysis
    monkeypatch.setattr(wandb_log, "log_analysis", lambda *a, **k: logged.extend(original(*a, **k)) or logged)
    _, dirty, _ = sweeps
    out = tmp_path / "out"
    _report(dirty, out, "--wandb-log", "offline")

    assert [(r.name, r.group, r.job_type) for r in logged] == [("analysis-bias-v1", "bias-v1", "analysis"),
                                                               ("analysis-length-v1", "length-v1", "analysis")]
    bias = logged[0]
    assert bias.tables == ["bias/arms", "bias/paired", "runs", "environment"]
    arms = pd.read_csv(out / "bias.csv").set_index("bias")
    assert bias.summary["bias/bias=dr_grpo/test/accuracy_mean"] == arms.loc["dr_grpo", "test/accuracy_mean"]
    assert bias.summary["bias/bias=grpo/test/accuracy_ci95"] == arms.loc["grpo", "test/accuracy_ci95"]
    assert bias.summary["bias/bias=grpo/n"] == 3
    assert bias.summary["bias/paired/bias=dr_grpo/test/accuracy_mean"] == pytest.approx(3.0 + 0.5 / 3)
    assert (bias.summary["runs/finished"], bias.summary["runs/failed"], bias.summary["runs/set aside"]) == (6, 1, 2)

    run_dirs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 2 and all(list(d.glob("run-*.wandb")) for d in run_dirs)
    files = Path(bias.dir)
    assert files.parent in run_dirs
    saved = {p.relative_to(files / "media" / "table").as_posix().rsplit("_", 2)[0]
             for p in (files / "media" / "table").rglob("*.table.json")}
    assert saved == {"bias/arms", "bias/paired", "runs", "environment"}
    table = json.loads(next((files / "media" / "table" / "bias").glob("arms_*.table.json")).read_text())
    assert table["columns"][:4] == ["bias", "n", "runs", "seeds"]
    assert {row[0]: row[table["columns"].index("test/accuracy_mean")] for row in table["data"]} == pytest.approx(
        arms["test/accuracy_mean"].to_dict())
    runs = json.loads(next(files.glob("media/table/runs_*.table.json")).read_text())
    statuses = [row[runs["columns"].index("status")] for row in runs["data"]]
    assert sorted(statuses) == sorted(["finished"] * 6 + ["failed", "preempted", "set aside", "set aside"])
    assert list(files.glob("media/images/plots/bias_by_bias_*.png"))
    assert "W&B analysis run analysis-bias-v1 (group bias-v1)" in capsys.readouterr().out


def test_wandb_log_is_off_by_default(sweeps, tmp_path):
    clean, _, _ = sweeps
    _report(clean, tmp_path / "out")
    assert not (tmp_path / "out" / "wandb").exists()


def test_a_reused_reference_arm_is_a_finished_run_of_its_own_study_that_says_where_it_came_from(tmp_path):
    runs = write_sweeps(tmp_path / "runs")
    clean = _report(runs, tmp_path / "clean")
    twin = runs / "bias-v1" / "bias=grpo,seed=0"
    copy = runs / "length-v1" / "length_reward=none,seed=0"
    metrics = json.loads((copy / "metrics.json").read_text())
    (copy / "metrics.json").write_text(json.dumps({**metrics, "reused_from": str(twin)}))
    html = _report(runs, tmp_path / "reused")
    for name in ("bias", "length", "length_paired"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "clean" / f"{name}.csv"),
                                      pd.read_csv(tmp_path / "reused" / f"{name}.csv"))
    listed = run_list(scan_run_dirs([runs]), tmp_path / "reused")
    row = listed[listed["run"] == str(copy)].iloc[0]
    assert row["status"] == "finished" and row["sweep"] == "length" and "bias-v1/bias=grpo,seed=0" in row["detail"]
    assert (listed["status"] == "finished").all() and len(listed) == len(pd.read_csv(tmp_path / "clean" / "runs.csv"))
    assert html.count("(same config), copied") == 1 and "(same config), copied" not in clean
