"""Run records into DataFrames: local run directories (metrics.json + .hydra/config.yaml) or W&B runs.

Both readers produce the same columns, so tables and plots never know where the runs came from.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from medvqa_rl.factors import RECORDED_GROUPS

log = logging.getLogger(__name__)

FACTORS = (*RECORDED_GROUPS, "judge")  # the factor/<group> keys of a run record
# TRL's logged keys, as history.jsonl holds them (W&B prefixes them with "train/").
HISTORY_KEYS = {"reward": "mean_reward", "completions/mean_length": "completion_length"}
HISTORY_COLUMNS = ["run", "step", *HISTORY_KEYS.values()]


def _run_row(run: str, sweep: str | None, seed, factors: dict, metrics: dict) -> dict:
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and k.split("/")[0] in ("test", "init", "train")}
    return {"run": run, "sweep": sweep, "seed": seed, **{f: factors.get(f) for f in FACTORS}, **numeric}


def _history_frame(run: str, rows: list[dict], prefix: str = "") -> pd.DataFrame:
    """Steps that logged a reward: step, mean_reward, completion_length."""
    kept = []
    for row in rows:
        if f"{prefix}reward" not in row:
            continue
        step = row.get(f"{prefix}global_step", row.get("step"))
        kept.append({"run": run, "step": step, **{name: row.get(prefix + key) for key, name in HISTORY_KEYS.items()}})
    return pd.DataFrame(kept, columns=HISTORY_COLUMNS)


def _frames(rows: list[dict], histories: list[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.DataFrame(rows)
    histories = [h for h in histories if not h.empty]
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(columns=HISTORY_COLUMNS)
    return runs, history


def load_run_dirs(dirs: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every finished run under the given directories (searched recursively).

    Records a rerun set aside (previous/) are not read; runs without metrics.json (failed or
    interrupted) are counted in the log, not in the tables.
    """
    rows, histories, unfinished = [], [], []
    for root in map(Path, dirs):
        if not root.exists():
            raise FileNotFoundError(f"--runs {root}: no such directory")
        for config_path in sorted(root.rglob(".hydra/config.yaml")):
            run_dir = config_path.parent.parent
            if "previous" in run_dir.relative_to(root).parts:
                continue
            metrics_path = run_dir / "metrics.json"
            if not metrics_path.exists():
                unfinished.append(run_dir)
                continue
            cfg = OmegaConf.load(config_path)
            metrics = json.loads(metrics_path.read_text())
            factors = {f: metrics.get(f"factor/{f}", OmegaConf.select(cfg, f"{f}.name")) for f in FACTORS}
            rows.append(_run_row(str(run_dir), OmegaConf.select(cfg, "sweep.name"), cfg.seed, factors, metrics))
            history_path = run_dir / "history.jsonl"
            if history_path.exists():
                steps = [json.loads(line) for line in history_path.read_text().splitlines() if line.strip()]
                histories.append(_history_frame(str(run_dir), steps))
    if unfinished:
        log.warning("%d run(s) without metrics.json (failed or interrupted) left out: %s", len(unfinished),
                    ", ".join(map(str, unfinished)))
    if not rows:
        raise ValueError(f"no finished run (a run directory with metrics.json) under {', '.join(map(str, dirs))}")
    return _frames(rows, histories)


def load_wandb_runs(path: str, group: str | None = None, api=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finished runs of ENTITY/PROJECT (optionally one group = one sweep) through the W&B public API.

    `api` defaults to wandb.Api(); anything whose runs(path, filters=...) yields objects with config,
    summary, name, group, state and history() works.
    """
    if api is None:
        import wandb

        api = wandb.Api()
    rows, histories = [], []
    for run in api.runs(path, filters={"group": group} if group else None):
        summary = dict(run.summary.items())
        if getattr(run, "state", "finished") != "finished" or "test/accuracy" not in summary:
            continue
        config = dict(run.config)
        factors = {f: config.get(f"factor/{f}", summary.get(f"factor/{f}")) for f in FACTORS}
        sweep = (config.get("sweep") or {}).get("name") or run.group
        rows.append(_run_row(run.name, sweep, config.get("seed", summary.get("seed")), factors, summary))
        history = run.history(keys=[f"train/{k}" for k in HISTORY_KEYS], x_axis="train/global_step", pandas=True)
        histories.append(_history_frame(run.name, history.to_dict("records"), prefix="train/"))
    if not rows:
        raise ValueError(f"no finished run with test metrics in W&B {path}" + (f" group {group}" if group else ""))
    return _frames(rows, histories)
