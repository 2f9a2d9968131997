"""Named sweeps end to end: every sweep composes; a small sweep's tables equal the means of its run
records; a sweep with a failing run records it, goes on, and a rerun skips the finished run and redoes the
failed one; the SLURM launcher config composes and submitit runs a grid point (submitit_local)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from analysis.tables import METRICS
from medvqa_rl.bookkeeping.grid_point_dirs import MAX_NAME, grid_point_dir
from medvqa_rl.models.tiny_inits import tiny_checkpoint

from .conftest import CONF_DIR, ONE_STEP_RUN, SMALL_TINY, cli, compose_config

SWEEPS = sorted(p.stem for p in (Path(CONF_DIR) / "sweep").glob("*.yaml") if not p.stem.startswith("_"))


def _compose_with_hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


def test_the_paper_studies_are_all_there():
    assert SWEEPS == ["bias", "factorial", "init", "kl", "length", "methods", "objectives", "reasoning", "semantic"]


@pytest.mark.parametrize("name", SWEEPS)
def test_every_sweep_composes_with_seeds_a_stable_folder_and_its_wandb_group(name):
    cfg = _compose_with_hydra([f"sweep={name}"])
    params = cfg.hydra.sweeper.params
    assert len(str(params.seed).split(",")) >= 3
    assert cfg.sweep.name == name and cfg.wandb.group == f"{name}-v{cfg.sweep.version}"
    assert cfg.hydra.sweep.dir == f"multirun/{name}-v{cfg.sweep.version}"  # no timestamp: reruns resume there
    assert OmegaConf.to_container(cfg.hydra.sweep)["subdir"] == "${grid_point_dir:${hydra.job.override_dirname}}"
    for group in params:
        if group != "seed":
            for option in str(params[group]).split(","):
                compose_config([f"sweep={name}", f"{group}={option}"])  # every grid point composes


def test_slurm_launcher_config_composes():
    launcher = _compose_with_hydra(["sweep=bias", "hydra/launcher=slurm"]).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node) == (1, 1)


def _records(sweep_dir: Path) -> list[tuple[dict, dict]]:
    """(resolved config, metrics) of every finished run of a sweep folder."""
    return [(OmegaConf.to_container(OmegaConf.load(m.parent / ".hydra" / "config.yaml"), resolve=True),
             json.loads(m.read_text())) for m in sorted(sweep_dir.glob("*/metrics.json"))]


def _grid_point(sweep_dir: Path, override: str) -> Path:
    """The run folder of the grid point with this override (long override lists shorten folder names)."""
    (found,) = [p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")
                if override in OmegaConf.load(p)]
    return found


def test_grid_point_folders_stay_short_and_stable():
    short = "bias=dr_grpo,seed=1"
    assert grid_point_dir(short) == short
    assert grid_point_dir("model_init.path=Qwen/Qwen2-VL-2B,seed=0") == "model_init.path=Qwen_Qwen2-VL-2B,seed=0"
    long = ",".join(f"family.build.pretrain.key{i}={i}" for i in range(20))
    assert len(grid_point_dir(long)) <= MAX_NAME and grid_point_dir(long) == grid_point_dir(long)
    assert grid_point_dir(long) != grid_point_dir(long + "1")


@pytest.mark.slow  # a CLI/multirun end-to-end run: the slow tier
def test_small_sweep_tables_equal_the_means_of_the_run_records(tiny_cache, tmp_path):
    """sweep=bias at a one-step budget, two seeds, joblib with 2 jobs; then `python -m analysis`."""
    result = cli(["-m", "sweep=bias", "seed=0,1", *SMALL_TINY, *ONE_STEP_RUN, "dataset.test_size=8",
                  f"cache_dir={tiny_cache}", f"sweep.root={tmp_path / 'sweeps'}", "eval.progress=false",
                  "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = tmp_path / "sweeps" / "bias-v1"
    records = _records(sweep_dir)
    assert len(records) == 4

    report = cli(["--runs", str(sweep_dir), "--out", str(tmp_path / "tables")], tmp_path, module="analysis")
    assert report.returncode == 0, report.stderr[-3000:]
    table = pd.read_csv(tmp_path / "tables" / "bias.csv")
    assert sorted(table["bias"]) == ["dr_grpo", "grpo"]
    for _, row in table.iterrows():
        level = [metrics for cfg, metrics in records if cfg["bias"]["name"] == row["bias"]]
        assert (row["n"], row["seeds"]) == (2, "0,1")
        for column, _ in METRICS:
            values = [m[column] for m in level]
            assert row[f"{column}_mean"] == pytest.approx(sum(values) / len(values)), (row["bias"], column)
            if len(set(values)) == 1:
                assert row[f"{column}_ci95"] == pytest.approx(0.0)
            else:
                assert row[f"{column}_ci95"] > 0 and not math.isnan(row[f"{column}_ci95"])
    markdown = (tmp_path / "tables" / "bias.md").read_text()
    accuracy = table.set_index("bias").loc["grpo", ["test/accuracy_mean", "test/accuracy_ci95"]]
    assert f"{accuracy.iloc[0]:.2f} ± {accuracy.iloc[1]:.2f}" in markdown
    assert (tmp_path / "tables" / "bias.tex").read_text().count(r"\midrule") == 1
    # The training curves, TRL's diagnostics per level (entropy, clip ratio, equal-reward groups, KL) and the forest plot.
    assert {p.name for p in (tmp_path / "tables" / "plots").iterdir()} == {
        *(f"bias_by_bias_{curve}.png" for curve in ("mean_reward", "completion_length", "train_accuracy", "entropy",
                                                     "clip_ratio", "frac_reward_zero_std", "kl")),
        "bias_forest.png"}
    assert (tmp_path / "tables" / "index.html").is_file()


@pytest.mark.slow  # a CLI/multirun end-to-end run: the slow tier
def test_failed_run_is_recorded_the_grid_goes_on_and_a_rerun_redoes_only_it(tiny_cache, tmp_path):
    """One grid point points at a checkpoint that is not there yet: it fails before loading a model."""
    args = ["-m", "sweep=bias", "bias=grpo", "seed=0", "model_init.path=ckpt,null", *SMALL_TINY, *ONE_STEP_RUN,
            "wandb.mode=offline", "eval.similarity_model=null", f"cache_dir={tiny_cache}",
            f"sweep.root={tmp_path / 'sweeps'}", "eval.progress=false"]
    first = cli(args, tmp_path)
    assert first.returncode != 0  # the sweep reports its failure ...
    sweep_dir = tmp_path / "sweeps" / "bias-v1"
    failed, finished = _grid_point(sweep_dir, "model_init.path=ckpt"), _grid_point(sweep_dir, "model_init.path=null")
    assert (finished / "metrics.json").exists()  # ... after running the rest of the grid (ckpt came first)
    failure = json.loads((failed / "failure.json").read_text())
    assert failure["error_type"] == "ConfigError" and "model_init.path='ckpt'" in failure["message"]
    # The failure is in W&B as well: the offline run's log (protobuf records) holds the summary keys.
    (wandb_log,) = (failed / "wandb").glob("offline-run-*/run-*.wandb")
    assert b"failure/error_type" in wandb_log.read_bytes() and b"ConfigError" in wandb_log.read_bytes()
    finished_record = (finished / "metrics.json").read_bytes()
    finished_mtime = (finished / "metrics.json").stat().st_mtime_ns

    instruct = tiny_checkpoint("instruct", OmegaConf.to_container(compose_config(SMALL_TINY).family.build,
                                                                  resolve=True), tiny_cache)
    shutil.copytree(instruct, tmp_path / "ckpt")  # the missing checkpoint arrives
    second = cli(args, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert log.count("skipped:") == 1 and str(finished) in log
    assert (finished / "metrics.json").read_bytes() == finished_record
    assert (finished / "metrics.json").stat().st_mtime_ns == finished_mtime
    assert "test/accuracy" in json.loads((failed / "metrics.json").read_text())
    assert not (failed / "failure.json").exists()
    (kept,) = (failed / "previous").glob("*/failure.json")  # the failure record is kept, not deleted
    assert json.loads(kept.read_text()) == failure


@pytest.mark.slow  # a CLI/multirun end-to-end run: the slow tier
def test_submitit_local_runs_a_grid_point(tiny_cache, tmp_path):
    result = cli(["-m", "sweep=bias", "bias=dr_grpo", "seed=0", *SMALL_TINY, *ONE_STEP_RUN,
                  "eval.similarity_model=null", f"cache_dir={tiny_cache}", f"sweep.root={tmp_path / 'sweeps'}",
                  "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics,) = (tmp_path / "sweeps" / "bias-v1").glob("*/metrics.json")
    assert json.loads(metrics.read_text())["factor/bias"] == "dr_grpo"


def test_optional_groups_need_no_plus_and_apply_in_a_fixed_order():
    """experiment, sweep and debug sit in the defaults list: any command-line order composes the same."""
    groups = ["experiment=paper_qwen2vl_2b_pmcvqa", "sweep=methods", "debug=smoke"]
    first = OmegaConf.to_yaml(compose_config(groups))
    assert OmegaConf.to_yaml(compose_config(groups[::-1])) == first
    assert OmegaConf.to_yaml(compose_config([groups[1], groups[0], groups[2]])) == first
    cfg = compose_config(groups)
    assert cfg.family.name == "qwen2_vl_2b" and cfg.sweep.name == "methods"
    assert cfg.method.max_steps == 4 and cfg.budget.examples is None  # debug's smoke budget applies last


def test_no_symlinks_in_the_tree():
    root = Path(CONF_DIR).parent
    links = [p for base in ("conf", "sweeps", "medvqa_rl", "tests") for p in (root / base).rglob("*") if p.is_symlink()]
    assert links == []


@pytest.mark.slow  # a CLI/multirun end-to-end run: the slow tier
def test_paper_studies_script_runs_a_study_and_writes_its_tables(tiny_cache, tmp_path):
    import os
    import subprocess
    import sys

    script = Path(CONF_DIR).parent / "sweeps" / "paper_studies.sh"
    # The script calls `python`: the interpreter running these tests, also where its venv is used without activating it.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "STUDIES": "bias", "RUNS": str(tmp_path / "runs"),
           "TABLES": str(tmp_path / "tables"), "WANDB_SILENT": "true"}
    result = subprocess.run(["bash", str(script), "seed=0", *SMALL_TINY, *ONE_STEP_RUN, "eval.similarity_model=null",
                             f"cache_dir={tiny_cache}", "eval.progress=false"],
                            capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "runs" / "bias-v1").glob("*/metrics.json"))) == 2
    assert any((tmp_path / "tables").glob("*.md"))
