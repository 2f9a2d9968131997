"""analysis/: run records into tables and plots, from crafted run directories and from W&B-shaped runs.
(The table test on a real sweep is in test_sweeps.py.)"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from omegaconf import OmegaConf

from analysis.__main__ import build_report, main
from analysis.records import load_run_dirs, load_wandb_runs
from analysis.studies import STUDIES, study_runs
from analysis.tables import ci95

from .conftest import compose_config

T_975_DF2 = 4.302652729911275  # Student t quantile 0.975 with 2 degrees of freedom


def _metrics(accuracy: float, **extra) -> dict:
    return {"test/accuracy": accuracy, "test/perplexity": 2.0, "test/judge_score": 80.0,
            "test/completion_tokens": 12.0, "init/test/accuracy": 40.0, **extra}


def _write_run(run_dir, overrides: list[str], metrics: dict | None, history: list[dict] = ()):
    """A run directory as a finished (metrics given) or failed (None) run leaves it."""
    cfg = compose_config(overrides)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    if metrics is not None:
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    if history:
        (run_dir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))


def test_ci95_is_the_t_interval():
    assert ci95(pd.Series([1.0, 2.0, 3.0])) == pytest.approx(T_975_DF2 * 1.0 / math.sqrt(3))
    assert math.isnan(ci95(pd.Series([5.0])))


def test_local_runs_give_study_tables(tmp_path):
    accuracies = {("grpo", 0): 40.0, ("grpo", 1): 50.0, ("grpo", 2): 60.0, ("dr_grpo", 0): 70.0, ("dr_grpo", 1): 80.0}
    for (bias, seed), acc in accuracies.items():
        history = [{"step": s, "reward": 0.1 * s + seed, "completions/mean_length": 10 + s} for s in (1, 2)]
        _write_run(tmp_path / "sweep" / f"bias={bias},seed={seed}", ["sweep=bias", f"bias={bias}", f"seed={seed}"],
                   _metrics(acc), history)
    _write_run(tmp_path / "sweep" / "bias=dr_grpo,seed=2", ["sweep=bias", "bias=dr_grpo", "seed=2"], None)
    # A record a rerun set aside is history, not a result.
    _write_run(tmp_path / "sweep" / "bias=grpo,seed=0" / "previous" / "t0", ["sweep=bias", "seed=0"], _metrics(0.0))

    runs, history = load_run_dirs([tmp_path / "sweep"])
    assert len(runs) == 5 and set(runs["sweep"]) == {"bias"}
    assert set(history.columns) == {"run", "step", "mean_reward", "completion_length"} and len(history) == 10

    out = tmp_path / "report"
    written = build_report(runs, history, out)
    table = pd.read_csv(out / "bias.csv").set_index("bias")
    assert table.loc["grpo", "test/accuracy_mean"] == pytest.approx(50.0)
    assert table.loc["grpo", "test/accuracy_ci95"] == pytest.approx(T_975_DF2 * 10.0 / math.sqrt(3))
    assert table.loc["dr_grpo", "test/accuracy_mean"] == pytest.approx(75.0)
    assert (table["n"].to_dict(), table.loc["dr_grpo", "seeds"]) == ({"dr_grpo": 2, "grpo": 3}, "0,1")
    assert not (out / "init.csv").exists()  # no run of the init sweep among these
    assert "50.00 ± 24.84" in (out / "bias.md").read_text()
    tex = (out / "bias.tex").read_text()
    assert r"\toprule" in tex and r"dr\_grpo & 2 & 75.00 $\pm$ 63.53" in tex
    assert {p.name for p in written if p.suffix == ".png"} == {"bias_by_bias_mean_reward.png",
                                                              "bias_by_bias_completion_length.png"}


def test_adhoc_runs_pool_the_other_factors(tmp_path):
    """Runs of a plain multirun (no named sweep): each study with two levels or more gets a table."""
    for i, (init, bias) in enumerate([("instruct", "grpo"), ("instruct", "dr_grpo"), ("base", "grpo")]):
        _write_run(tmp_path / str(i), [f"model_init={init}", f"bias={bias}"], _metrics(10.0 * (i + 1)))
    runs, _ = load_run_dirs([tmp_path])
    chosen = {s.name: len(study_runs(runs, s)) for s in STUDIES}
    assert chosen == {"init": 3, "semantic": 0, "length": 0, "bias": 3, "methods": 0, "factorial": 3}
    main(["--runs", str(tmp_path), "--out", str(tmp_path / "out")])
    table = pd.read_csv(tmp_path / "out" / "init.csv").set_index("model_init")
    assert table.loc["instruct", "test/accuracy_mean"] == pytest.approx(15.0)


def test_no_finished_run_is_a_clear_error(tmp_path):
    _write_run(tmp_path / "failed", [], None)
    with pytest.raises(ValueError, match="no finished run"):
        load_run_dirs([tmp_path])
    with pytest.raises(FileNotFoundError, match="--runs"):
        load_run_dirs([tmp_path / "missing"])


class FakeSummary(dict):
    """wandb's HTTPSummary offers items(), keys(), get()."""


class FakeRun:
    """Shaped like the items of wandb.Api().runs(...): name, group, state, config, summary, history()."""

    def __init__(self, name, group, config, summary, history, state="finished"):
        self.name, self.group, self.state = name, group, state
        self.config, self.summary, self._history = config, FakeSummary(summary), history
        self.history_calls = []

    def history(self, samples=500, keys=None, x_axis="_step", pandas=True):
        self.history_calls.append((keys, x_axis))
        rows = [{x_axis: row[x_axis], **{k: row[k] for k in keys}} for row in self._history]
        return pd.DataFrame(rows)


class FakeApi:
    def __init__(self, runs):
        self._runs, self.calls = runs, []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        group = (filters or {}).get("group")
        return [r for r in self._runs if group is None or r.group == group]


def _wandb_run(name, reward, seed, accuracy, group="semantic-v1", state="finished"):
    # As start_wandb writes them: the resolved config (sweep, seed, ...) plus factor/* keys; the
    # summary holds the run record; TRL's steps are logged under train/.
    config = {"seed": seed, "sweep": {"name": "semantic", "version": 1}, "reward": {"name": reward},
              **{f"factor/{f}": v for f, v in {"model_init": "instruct", "reward": reward, "length_reward": "none",
                                                "bias": "grpo", "method": "grpo", "family": "tiny",
                                                "dataset": "synthetic", "judge": "rule"}.items()}}
    summary = _metrics(accuracy, seed=seed, **{"factor/reward": reward, "_runtime": 12.5, "test/predictions": {
        "_type": "table-file"}}) if state == "finished" else {"failure/error_type": "RuntimeError"}
    history = [{"train/global_step": s, "train/reward": 0.5 + 0.1 * s, "train/completions/mean_length": 12.0 + s}
               for s in (10, 20)]
    return FakeRun(name, group, config, summary, history, state)


def test_wandb_adapter_builds_the_same_frame(tmp_path):
    api = FakeApi([
        _wandb_run("a", "accuracy", 0, 40.0), _wandb_run("b", "accuracy", 1, 44.0),
        _wandb_run("c", "semantic", 0, 50.0), _wandb_run("d", "semantic", 1, 56.0),
        _wandb_run("e", "semantic", 2, 0.0, state="failed"),  # not a result
        _wandb_run("f", "semantic", 0, 99.0, group="bias-v1"),  # another sweep
    ])
    runs, history = load_wandb_runs("lab/medvqa", group="semantic-v1", api=api)
    assert api.calls == [("lab/medvqa", {"group": "semantic-v1"})]
    assert sorted(runs["run"]) == ["a", "b", "c", "d"]
    row = runs.set_index("run").loc["c"]
    assert (row["sweep"], row["reward"], row["method"], row["seed"], row["test/accuracy"]) == (
        "semantic", "semantic", "grpo", 0, 50.0)
    assert "_runtime" not in runs.columns and "test/predictions" not in runs.columns
    assert len(history) == 8 and history["step"].tolist()[:2] == [10, 20]
    assert history["mean_reward"].tolist()[:2] == pytest.approx([1.5, 2.5])

    written = build_report(runs, history, tmp_path)
    table = pd.read_csv(tmp_path / "semantic.csv").set_index("reward")
    assert table.loc["accuracy", "test/accuracy_mean"] == pytest.approx(42.0)
    assert table.loc["semantic", "test/accuracy_mean"] == pytest.approx(53.0)
    assert table.loc["semantic", "test/perplexity_mean"] == pytest.approx(2.0)
    assert any(p.name == "semantic_by_reward_mean_reward.png" for p in written)
