"""Run records into DataFrames: local run directories (metrics.json + .hydra/config.yaml) or W&B runs.

Both readers produce the same columns, so tables and plots never know where the runs came from. scan_*
return every run (Records: the finished ones for the tables, the others for the report's run list);
load_* return the finished ones only.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from analysis.tables import METRICS as TABLE_METRICS
from medvqa_rl.bookkeeping.checkpoints import checkpoints
from medvqa_rl.bookkeeping.question_outcomes import (WANDB_KEY, OutcomeReader, Outcomes, local_outcomes,
                                                     outcomes_from_table)
from medvqa_rl.factors import RECORDED_GROUPS, RECORDED_VALUES, extra_sets_level
from medvqa_rl.bookkeeping.run_record import FAILURE_FILE, METRICS, finished_record, read_json_object, read_jsonl

log = logging.getLogger(__name__)

FACTORS = (*RECORDED_GROUPS, "judge", *RECORDED_VALUES)  # the factor/<group> keys of a run record
# TRL's logged keys, as history.jsonl holds them (W&B prefixes them with "train/").
# rewards/accuracy/mean: the fraction of sampled completions the accuracy reward scored correct (SFT and
# DPO log none of these).
# TRL's diagnostics of the objective (issue 38): mean token entropy, the share of tokens whose ratio was clipped (the
# clipped losses only), the share of groups whose rewards are all equal (no advantage, no gradient), the KL to the
# reference (beta > 0 only).
DIAGNOSTIC_KEYS = {"entropy": "entropy", "clip_ratio/region_mean": "clip_ratio",
                   "frac_reward_zero_std": "frac_reward_zero_std", "kl": "kl"}
HISTORY_KEYS = {"reward": "mean_reward", "completions/mean_length": "completion_length",
                "rewards/accuracy/mean": "train_accuracy", **DIAGNOSTIC_KEYS}
# Absent from some runs' steps (W&B is asked separately).
OPTIONAL_HISTORY_KEYS = ("rewards/accuracy/mean", *DIAGNOSTIC_KEYS)
HISTORY_COLUMNS = ["run", "step", *HISTORY_KEYS.values()]
RUN_COLUMNS = ["run", "sweep", "sweep_version", "wandb_group", "seed", *FACTORS]


class NoRunsError(ValueError):
    """The source holds no run at all (or, for load_*, no finished one)."""


EXCLUDED_COLUMNS = ["run", "sweep", "sweep_version", "wandb_group", "seed", *FACTORS, "status", "detail", "record",
                    "test/accuracy"]


# A table's metric key (tables.METRICS, in-domain or an extra set's): test/<metric> or test/<set>/<metric>.
_TABLE_METRIC = re.compile(r"test/(?:[^/]+/)?(%s)" % "|".join(re.escape(column.removeprefix("test/"))
                                                           for column, _ in TABLE_METRICS))


def _run_row(run: str, sweep: tuple, seed, factors: dict, metrics: dict, group: str | None = None) -> dict:
    """sweep: (name, version), both None outside a named sweep. Only finite numbers enter: a table metric that is
    NaN, infinite, a string or null is left out (never averaged) and named in `invalid_metrics`, with a warning."""
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and k.split("/")[0] in ("test", "init", "train") and math.isfinite(v)}
    invalid = [f"{k} = {v!r}" for k, v in metrics.items() if _TABLE_METRIC.fullmatch(k) and k not in numeric]
    name, version = sweep
    row = {"run": run, "sweep": name, "sweep_version": version, "wandb_group": group, "seed": seed,
           **{f: factors.get(f) for f in FACTORS}, **numeric}
    if invalid:
        log.warning("run %s: %s not a finite number, left out of the tables' means", run, "; ".join(invalid))
        row["invalid_metrics"] = "; ".join(invalid)
    return row


def _versions(metrics: dict) -> dict:
    """What a finished record says produced it, as strings (the report's environment section): version/<package>,
    provenance/* (code, init, data, ...), eval_judge (metrics.json eval/judge: which judge scored the judge score)."""
    found = {k: str(v) for k, v in metrics.items() if k.startswith(("version/", "provenance/"))}
    return found | ({"eval_judge": str(metrics["eval/judge"])} if metrics.get("eval/judge") is not None else {})


def _sweep(cfg) -> tuple:
    """(name, version) of a run's named sweep, from its config (a DictConfig or W&B's plain dict)."""
    sweep = cfg.get("sweep") or {}
    version = sweep.get("version")
    return sweep.get("name"), None if version is None else int(version)


def _wandb_group(cfg) -> str | None:
    return OmegaConf.select(cfg, "wandb.group", default=None, throw_on_resolution_failure=False)


def _history_frame(run: str, rows: list[dict], prefix: str = "") -> pd.DataFrame:
    """Steps that logged a reward: step, mean_reward, completion_length."""
    kept = []
    for row in rows:
        if f"{prefix}reward" not in row:
            continue
        step = row.get(f"{prefix}global_step", row.get("step"))
        kept.append({"run": run, "step": step, **{name: row.get(prefix + key) for key, name in HISTORY_KEYS.items()}})
    frame = pd.DataFrame(kept, columns=HISTORY_COLUMNS)
    values = list(HISTORY_KEYS.values())  # a key some steps lack (clip_ratio of sapo, kl at beta 0) is NaN, not None
    frame[values] = frame[values].apply(pd.to_numeric, errors="coerce")
    return frame


def _frames(rows: list[dict], histories: list[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.DataFrame(rows) if rows else pd.DataFrame(columns=RUN_COLUMNS)
    histories = [h for h in histories if not h.empty]
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(columns=HISTORY_COLUMNS)
    return runs, history


def _excluded_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows).reindex(columns=EXCLUDED_COLUMNS)
    frame["record"] = [None if pd.isna(r) else str(r) for r in frame["record"]]
    return frame


@dataclass
class Records:
    """What a source holds: `runs`, a row per finished run (the tables' input); `history`, their logged
    steps; `excluded`, a row per run that did not finish or was set aside (run, sweep, seed, the factors,
    status, detail, record, test/accuracy where its record has one), listed by the report, never averaged.

    Status: "failed", "preempted" or "interrupted" (failure.json; it wins over a metrics.json beside it),
    "half-written" (no metrics.json, or one cut off: running, or killed), "set aside" (an earlier attempt a
    rerun moved into <run>/previous/<time>/); W&B runs: their state (crashed, running, ...).
    """

    runs: pd.DataFrame
    history: pd.DataFrame
    excluded: pd.DataFrame
    wandb: dict = field(default_factory=dict)  # the runs' W&B project/entity, when they agree
    outcomes: OutcomeReader = local_outcomes  # a run's per-question outcomes by test set (question-level tests)

    def finished_only(self, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self.runs.empty:
            raise NoRunsError(f"no finished run (a run directory with metrics.json) in {source}"
                              f" ({len(self.excluded)} not finished)")
        return self.runs, self.history


def _unfinished(run_dir: Path) -> tuple[str, str, Path | None, dict]:
    """(status, detail, record file, metrics) of a run directory; status "finished" exactly when
    run_record.finished_record says so (a readable metrics.json and no failure.json)."""
    done = finished_record(run_dir)
    if done is not None:
        return "finished", "", run_dir / METRICS, done
    failure, metrics = read_json_object(run_dir / FAILURE_FILE), read_json_object(run_dir / METRICS)
    saved = checkpoints(run_dir)
    resume = f"; {len(saved)} checkpoint(s): a rerun resumes" if saved else ""
    if (run_dir / FAILURE_FILE).exists():
        failure = failure or {}
        detail = f"{failure.get('error_type', '?')}: {failure.get('message', 'unreadable failure.json')}"
        if metrics is not None:
            detail += " (its metrics.json is not counted)"
        return failure.get("status", "failed"), detail + resume, run_dir / FAILURE_FILE, metrics or {}
    if (run_dir / METRICS).exists():
        return "half-written", "metrics.json cut off" + resume, run_dir / "metrics.json", {}
    return "half-written", "no metrics.json (still running, or killed)" + resume, None, {}


def _set_aside(run_dir: Path) -> list[tuple[Path, str, str, Path | None, dict]]:
    """(folder, status, detail, record, metrics) of each earlier attempt in run_dir/previous/<time>/."""
    found = []
    for earlier in sorted(p for p in (run_dir / "previous").glob("*") if p.is_dir()):
        was, detail, record, metrics = _unfinished(earlier)
        if was == "half-written" and record is None:
            record = next((earlier / n for n in ("resolved_config.yaml", "history.jsonl") if (earlier / n).exists()),
                          None)
        found.append((earlier, "set aside", f"was {was}" + (f": {detail}" if detail else ""), record, metrics))
    return found


def _common(values) -> str | None:
    values = {v for v in values if v is not None}
    return values.pop() if len(values) == 1 else None


def run_dirs(root: Path) -> list[tuple[Path, Path]]:
    """(run dir, its config) under root: folders with Hydra's .hydra/config.yaml, or else the run record's own
    resolved_config.yaml (a run started from Python, not the command line). Records a rerun set aside under a
    run's previous/ are not listed: they belong to that run (scan_run_dirs lists them with it)."""
    found = {p.parent.parent: p for p in root.rglob(".hydra/config.yaml")}
    for path in root.rglob("resolved_config.yaml"):
        found.setdefault(path.parent, path)
    return sorted((run, config) for run, config in found.items() if "previous" not in run.relative_to(root).parts)


def scan_run_dirs(dirs: list[str | Path]) -> Records:
    """Every run under the given directories (searched recursively for .hydra/config.yaml or resolved_config.yaml): finished
    ones into `runs`/`history`, the others (failed, half-written, set aside under previous/) into
    `excluded`. Raises NoRunsError when there is no run directory at all."""
    rows, histories, excluded, projects = [], [], [], []
    for root in map(Path, dirs):
        if not root.exists():
            raise FileNotFoundError(f"--runs {root}: no such directory")
        for run_dir, config_path in run_dirs(root):
            cfg = OmegaConf.load(config_path)
            status, detail, record, metrics = _unfinished(run_dir)
            factors = {f: metrics.get(f"factor/{f}", OmegaConf.select(cfg, f"{f}.name")) for f in FACTORS}
            if factors["test_sets"] is None and OmegaConf.select(cfg, "eval") is not None:  # records before it
                factors["test_sets"] = extra_sets_level(cfg.eval)
            sweep, group = _sweep(cfg), _wandb_group(cfg)
            projects.append((OmegaConf.select(cfg, "wandb.project"), OmegaConf.select(cfg, "wandb.entity")))
            for earlier, was, why, earlier_record, earlier_metrics in _set_aside(run_dir):
                excluded.append(_run_row(str(earlier), sweep, cfg.seed, factors, earlier_metrics, group)
                                | {"status": was, "detail": why, "record": earlier_record})
            if status != "finished":
                excluded.append(_run_row(str(run_dir), sweep, cfg.seed, factors, metrics, group)
                                | {"status": status, "detail": detail, "record": record})
                continue
            rows.append(_run_row(str(run_dir), sweep, cfg.seed, factors, metrics, group) | _versions(metrics)
                        | {"reused_from": metrics.get("reused_from")})
            history_path = run_dir / "history.jsonl"
            if history_path.exists():
                histories.append(_history_frame(str(run_dir), read_jsonl(history_path)))
    if not rows and not excluded:
        raise NoRunsError(f"no run under {', '.join(map(str, dirs))}: no run directory (a folder with "
                          ".hydra/config.yaml) was found")
    if excluded:
        log.warning("%d run(s) not finished or set aside, listed but left out of the tables: %s", len(excluded),
                    ", ".join(f"{r['run']} ({r['status']})" for r in excluded))
    runs, history = _frames(rows, histories)
    wandb = {"project": _common(p for p, _ in projects), "entity": _common(e for _, e in projects)}
    return Records(runs, history, _excluded_frame(excluded), wandb)


def load_run_dirs(dirs: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, history) of every finished run under the given directories (scan_run_dirs); raises
    NoRunsError when none finished."""
    return scan_run_dirs(dirs).finished_only(", ".join(map(str, dirs)))


def scan_wandb_runs(path: str, group: str | None = None, api=None) -> Records:
    """Every run of ENTITY/PROJECT (optionally one group = one sweep) through the W&B public API: finished
    ones with test metrics into `runs`/`history`, the others into `excluded` (status: their W&B state).

    `api` defaults to wandb.Api(); anything whose runs(path, filters=...) yields objects with config,
    summary, name, group, state and history() works: analysis.wandb_offline.OfflineApi reads the offline
    run files wandb wrote under run directories (`python -m analysis --wandb-dir`).
    """
    if api is None:
        import wandb

        api = wandb.Api()
    rows, histories, excluded, finished = [], [], [], {}
    for run in api.runs(path, filters={"group": group} if group else None):
        if getattr(run, "job_type", None) == "analysis":  # python -m analysis --wandb-log's own runs
            continue
        summary, config = dict(run.summary.items()), dict(run.config)
        factors = {f: config.get(f"factor/{f}", summary.get(f"factor/{f}")) for f in FACTORS}
        sweep = _sweep(config)
        if sweep[0] is None and run.group:  # a group named <sweep>-v<version>, or any other group
            name, _, version = run.group.rpartition("-v")
            sweep = (name, int(version)) if name and version.isdigit() else (run.group, None)
        row = _run_row(run.name, sweep, config.get("seed", summary.get("seed")), factors, summary, run.group)
        state = getattr(run, "state", "finished")
        if state != "finished" or "test/accuracy" not in summary:
            status = summary.get("failure/status") or (state if state != "finished" else "half-written")
            detail = summary.get("failure/message") or ("" if state != "finished" else "no test/accuracy in the summary")
            excluded.append(row | {"status": status, "detail": detail, "record": getattr(run, "url", None)})
            continue
        rows.append(row | _versions(summary) | {"reused_from": summary.get("reused_from")})
        histories.append(_wandb_history(run))
        finished[run.name] = run
    if not rows and not excluded:
        raise NoRunsError(f"no run in W&B {path}" + (f" group {group}" if group else ""))
    runs, history = _frames(rows, histories)
    entity, _, project = path.rpartition("/")
    return Records(runs, history, _excluded_frame(excluded), {"project": project, "entity": entity or None},
                   lambda name: wandb_outcomes(finished[name]))


def wandb_outcomes(run) -> Outcomes:
    """A W&B run's per-question outcomes: its `test/outcomes` Table (every question of every test set), fetched
    with run.file(...).download() as the public API (and analysis.wandb_offline) serve it; {} without one."""
    reference = run.summary.get(WANDB_KEY)
    path = reference.get("path") if hasattr(reference, "get") else None
    if not path:
        return {}
    with tempfile.TemporaryDirectory() as folder, run.file(path).download(root=folder, replace=True) as f:
        return outcomes_from_table(json.load(f))


def _wandb_history(run) -> pd.DataFrame:
    """The run's logged steps; optional keys are asked for apart, as W&B returns only the rows that hold
    every key asked for."""
    required = [f"train/{k}" for k in HISTORY_KEYS if k not in OPTIONAL_HISTORY_KEYS]
    frame = run.history(keys=required, x_axis="train/global_step", pandas=True)
    for key in OPTIONAL_HISTORY_KEYS:
        extra = run.history(keys=[f"train/{key}"], x_axis="train/global_step", pandas=True)
        if not extra.empty and not frame.empty:
            frame = frame.merge(extra[["train/global_step", f"train/{key}"]], on="train/global_step", how="left")
    return _history_frame(run.name, frame.to_dict("records"), prefix="train/")


def load_wandb_runs(path: str, group: str | None = None, api=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, history) of the finished runs of ENTITY/PROJECT (scan_wandb_runs); raises NoRunsError when
    none finished with test metrics."""
    return scan_wandb_runs(path, group, api).finished_only(f"W&B {path}" + (f" group {group}" if group else ""))
