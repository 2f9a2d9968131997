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
from analysis.paired import paired_effects
from analysis.studies import REFERENCE_LEVELS, STUDIES, study_runs
from analysis.tables import ci95

from .conftest import compose_config

T_975_DF1 = 12.706204736174694  # Student t quantile 0.975 with 1 degree of freedom
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
        history = [{"step": s, "reward": 0.1 * s + seed, "completions/mean_length": 10 + s,
                    "rewards/accuracy/mean": 0.05 * s} for s in (1, 2)]
        _write_run(tmp_path / "sweep" / f"bias={bias},seed={seed}", ["sweep=bias", f"bias={bias}", f"seed={seed}"],
                   _metrics(acc), history)
    _write_run(tmp_path / "sweep" / "bias=dr_grpo,seed=2", ["sweep=bias", "bias=dr_grpo", "seed=2"], None)
    # A record a rerun set aside is history, not a result.
    _write_run(tmp_path / "sweep" / "bias=grpo,seed=0" / "previous" / "t0", ["sweep=bias", "seed=0"], _metrics(0.0))

    runs, history = load_run_dirs([tmp_path / "sweep"])
    assert len(runs) == 5 and set(runs["sweep"]) == {"bias"}
    assert set(history.columns) == {"run", "step", "mean_reward", "completion_length", "train_accuracy",
                                    "entropy", "clip_ratio", "frac_reward_zero_std", "kl"}  # TRL's diagnostics
    assert len(history) == 10

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
    assert {p.name for p in written if p.suffix == ".png"} == {
        "bias_by_bias_mean_reward.png", "bias_by_bias_completion_length.png", "bias_by_bias_train_accuracy.png"}


def test_adhoc_runs_pool_the_other_factors(tmp_path):
    """Runs of a plain multirun (no named sweep): each study with two levels or more gets a table."""
    for i, (init, bias) in enumerate([("instruct", "grpo"), ("instruct", "dr_grpo"), ("base", "grpo")]):
        _write_run(tmp_path / str(i), [f"model_init={init}", f"bias={bias}"], _metrics(10.0 * (i + 1)))
    runs, _ = load_run_dirs([tmp_path])
    chosen = {s.name: len(study_runs(runs, s)) for s in STUDIES}
    assert chosen == {"init": 3, "semantic": 0, "length": 0, "bias": 3, "methods": 0, "factorial": 3,
                      "objectives": 0, "kl": 0, "reasoning": 0}  # issue 38's studies: their own sweeps only
    main(["--runs", str(tmp_path), "--out", str(tmp_path / "out")])
    table = pd.read_csv(tmp_path / "out" / "init.csv").set_index("model_init")
    assert table.loc["instruct", "test/accuracy_mean"] == pytest.approx(15.0)


def test_no_finished_run_is_a_clear_error(tmp_path):
    _write_run(tmp_path / "failed", [], None)
    with pytest.raises(ValueError, match="no finished run"):
        load_run_dirs([tmp_path])
    with pytest.raises(FileNotFoundError, match="--runs"):
        load_run_dirs([tmp_path / "missing"])


def _write_bias_sweep(root, accuracies: dict):
    """A bias sweep's finished runs: {(bias, seed): accuracy}."""
    for (bias, seed), acc in accuracies.items():
        _write_run(root / f"bias={bias},seed={seed}", ["sweep=bias", f"bias={bias}", f"seed={seed}"], _metrics(acc))


# Large seed-to-seed variation, and dr_grpo = grpo + 5.0 on every seed.
CONSTANT_GAIN = {("grpo", 0): 20.0, ("grpo", 1): 55.0, ("grpo", 2): 90.0,
                 ("dr_grpo", 0): 25.0, ("dr_grpo", 1): 60.0, ("dr_grpo", 2): 95.0}


def test_every_study_factor_has_a_reference_level():
    for study in STUDIES:
        for factor in study.rows:
            assert factor in REFERENCE_LEVELS, (study.name, factor)
    assert REFERENCE_LEVELS == {"model_init": "instruct", "reward": "accuracy", "length_reward": "none",
                                "bias": "grpo", "method": "grpo", "beta": "0.04", "reasoning": "think"}


def test_paired_effect_of_a_constant_gain_has_no_interval(tmp_path):
    """Per arm the seeds spread the intervals wide; paired by seed the +5.0 is exact."""
    _write_bias_sweep(tmp_path / "sweep", CONSTANT_GAIN)
    runs, history = load_run_dirs([tmp_path / "sweep"])
    build_report(runs, history, tmp_path / "out")

    arms = pd.read_csv(tmp_path / "out" / "bias.csv").set_index("bias")
    assert arms.loc["grpo", "test/accuracy_mean"] == 55.0
    assert arms.loc["grpo", "test/accuracy_ci95"] == pytest.approx(T_975_DF2 * 35.0 / math.sqrt(3))  # ~87
    assert arms["n"].to_dict() == {"dr_grpo": 3, "grpo": 3}

    paired = pd.read_csv(tmp_path / "out" / "bias_paired.csv")
    assert len(paired) == 1
    row = paired.iloc[0]
    assert (row["factor"], row["level"], row["reference"], row["n"], row["pairs"], row["seeds"]) == (
        "bias", "dr_grpo", "grpo", 3, 3, "0,1,2")
    assert (row["test/accuracy_mean"], row["test/accuracy_ci95"]) == (5.0, 0.0)
    assert (row["test/perplexity_mean"], row["test/perplexity_ci95"]) == (0.0, 0.0)  # equal in every run
    assert math.isnan(row["test/similarity_mean"])  # no run recorded it
    markdown = (tmp_path / "out" / "bias_paired.md").read_text()
    assert "paired by seed: level − reference, mean ± 95% t-interval over the seeds' differences (n = paired seeds, df = n − 1" in markdown
    assert "| bias     | dr_grpo | grpo        | 3   | 5.00 ± 0.00    |" in markdown
    tex = (tmp_path / "out" / "bias_paired.tex").read_text()
    assert r"bias & dr\_grpo & grpo & 3 & 5.00 $\pm$ 0.00" in tex


def test_unpaired_seeds_are_left_out_of_the_paired_n(tmp_path):
    # Seed 0 has grpo only, seed 3 dr_grpo only: seeds 1 and 2 pair, differences 3.0 and 7.0.
    _write_bias_sweep(tmp_path, {("grpo", 0): 40.0, ("grpo", 1): 50.0, ("grpo", 2): 60.0,
                                 ("dr_grpo", 1): 53.0, ("dr_grpo", 2): 67.0, ("dr_grpo", 3): 10.0})
    runs, _ = load_run_dirs([tmp_path])
    row = paired_effects(runs, ("bias",)).iloc[0]
    assert (row["n"], row["pairs"], row["seeds"]) == (2, 2, "1,2")
    assert row["test/accuracy_mean"] == 5.0
    assert row["test/accuracy_ci95"] == pytest.approx(T_975_DF1 * math.sqrt(8.0) / math.sqrt(2))
    # Only the reference level, or no run at it: no paired row.
    assert paired_effects(runs[runs["bias"] == "grpo"], ("bias",)).empty
    assert paired_effects(runs[runs["bias"] == "dr_grpo"], ("bias",)).empty


def test_adhoc_runs_sharing_a_seed_count_once(tmp_path):
    """A plain multirun: the one-factor studies pool the other factors, so a level has several runs of
    one seed; they are averaged, and n counts seeds (per arm and paired). The factorial pairs only runs
    that differ in the row's factor alone."""
    accuracies = {("instruct", "grpo", 0): 10.0, ("instruct", "dr_grpo", 0): 20.0, ("base", "grpo", 0): 30.0,
                  ("instruct", "grpo", 1): 12.0, ("instruct", "dr_grpo", 1): 24.0, ("base", "grpo", 1): 40.0}
    for (init, bias, seed), acc in accuracies.items():
        _write_run(tmp_path / "runs" / f"{init},{bias},{seed}", [f"model_init={init}", f"bias={bias}", f"seed={seed}"],
                   _metrics(acc))
    runs, history = load_run_dirs([tmp_path / "runs"])
    build_report(runs, history, tmp_path / "out")

    arms = pd.read_csv(tmp_path / "out" / "init.csv").set_index("model_init")
    assert arms.loc["instruct", ["n", "runs", "seeds"]].tolist() == [2, 4, "0,1"]
    assert arms.loc["instruct", "test/accuracy_mean"] == 16.5  # seeds 0 and 1: 15 and 18
    assert arms.loc["instruct", "test/accuracy_ci95"] == pytest.approx(T_975_DF1 * 1.5)
    assert "n = seeds per row" in (tmp_path / "out" / "init.md").read_text()

    init = pd.read_csv(tmp_path / "out" / "init_paired.csv").iloc[0]
    assert (init["level"], init["reference"], init["n"], init["pairs"]) == ("base", "instruct", 2, 2)
    assert init["test/accuracy_mean"] == 18.5  # 30 - 15, 40 - 18
    bias = pd.read_csv(tmp_path / "out" / "bias_paired.csv").iloc[0]
    assert (bias["level"], bias["n"], bias["test/accuracy_mean"]) == ("dr_grpo", 2, -1.0)  # 20 - 20, 24 - 26

    factorial = pd.read_csv(tmp_path / "out" / "factorial_paired.csv").set_index("factor")
    assert list(factorial.index) == ["model_init", "bias"]  # reward and length_reward have one level here
    assert factorial.loc["model_init", ["n", "pairs", "test/accuracy_mean"]].tolist() == [2, 2, 24.0]  # at grpo
    assert factorial.loc["bias", ["n", "pairs", "test/accuracy_mean"]].tolist() == [2, 2, 11.0]  # at instruct


def test_factorial_pairs_average_the_other_factors_within_each_seed(tmp_path):
    """model_init x bias x 3 seeds: base adds 5 at grpo and 9 at dr_grpo, whatever the seed's level, so
    the main effect is 7 on every seed; n is 3 seeds, not 6 pairs."""
    offset = {0: 0.0, 1: 30.0, 2: 65.0}
    for init in ("base", "instruct"):
        for bias in ("grpo", "dr_grpo"):
            for seed in offset:
                base, dr = init == "base", bias == "dr_grpo"
                acc = 20.0 + offset[seed] + 5.0 * base + 2.0 * dr + 4.0 * (base and dr)
                _write_run(tmp_path / f"{init},{bias},{seed}",
                           ["sweep=factorial", f"model_init={init}", f"bias={bias}", f"seed={seed}"], _metrics(acc))
    runs, _ = load_run_dirs([tmp_path])
    study = next(s for s in STUDIES if s.name == "factorial")
    effects = paired_effects(study_runs(runs, study), study.rows).set_index("factor")
    assert effects.loc["model_init", ["level", "n", "pairs", "seeds"]].tolist() == ["base", 3, 6, "0,1,2"]
    assert effects.loc["model_init", ["test/accuracy_mean", "test/accuracy_ci95"]].tolist() == [7.0, 0.0]
    assert effects.loc["bias", ["level", "n", "pairs"]].tolist() == ["dr_grpo", 3, 6]
    assert effects.loc["bias", ["test/accuracy_mean", "test/accuracy_ci95"]].tolist() == [4.0, 0.0]


def test_cli_writes_and_prints_the_paired_table(tmp_path, capsys):
    _write_bias_sweep(tmp_path / "sweep", CONSTANT_GAIN)
    assert main(["--runs", str(tmp_path / "sweep"), "--out", str(tmp_path / "out")]) == 0
    assert {p.name for p in (tmp_path / "out").glob("bias_paired.*")} == {
        "bias_paired.csv", "bias_paired.md", "bias_paired.tex"}
    printed = capsys.readouterr().out
    assert (tmp_path / "out" / "bias_paired.md").read_text() in printed
    assert printed.index("### GRPO vs Dr.GRPO\n") < printed.index("### GRPO vs Dr.GRPO: paired effects")


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
        # As W&B: only the rows that hold every key asked for.
        rows = [{x_axis: row[x_axis], **{k: row[k] for k in keys}} for row in self._history
                if all(k in row for k in keys)]
        return pd.DataFrame(rows, columns=[x_axis, *keys])


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
