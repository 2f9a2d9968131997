"""The report's tables in W&B: one run per sweep (job_type "analysis", group = the sweep's W&B group, so the
dashboard shows it beside the sweep's runs) holding each study's tables as W&B Tables, their numbers as
summary values, the curve plots as images, the run list and the environment.

Summary keys: `<study>/<factor>=<level>/<metric>_{mean,ci95}` and `n` (per arm; the factorial's rows join
their levels with commas), `<study>/paired/<factor>=<level>/<metric>_{mean,ci95}` and `n` (level − reference),
`runs/finished` and `runs/<status>`. Tables: `<study>/arms`, `<study>/paired` (the CSVs' columns), `runs`,
`environment`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.records import Records
from analysis.report import StudyResult, environment, run_list
from analysis.tables import metric_columns

DEFAULT_PROJECT = "medvqa_rl"  # conf/config.yaml's wandb.project


@dataclass
class LoggedRun:
    """What one analysis run holds (W&B's own record is in `dir`)."""

    name: str
    group: str | None
    job_type: str
    dir: str
    tables: list[str]
    summary: dict


def _table(frame: pd.DataFrame):
    import wandb

    cells = frame.astype(object).where(frame.notna(), None)
    return wandb.Table(columns=[str(c) for c in frame.columns], data=cells.values.tolist())


def _numbers(frame: pd.DataFrame, labels: tuple[str, ...] | None, prefix: str) -> dict:
    """Summary values of a tables.summarize frame (`labels`: its factors) or a paired.paired_effects frame
    (None): a key per row and metric."""
    values = {}
    for _, row in frame.iterrows():
        label = (",".join(f"{f}={row[f]}" for f in labels) if labels else f"{row['factor']}={row['level']}")
        values[f"{prefix}/{label}/n"] = int(row["n"])
        for column, _, _ in metric_columns(frame.columns, "_mean"):
            for stat in ("mean", "ci95"):
                value = row[f"{column}_{stat}"]
                if value is not None and not math.isnan(value):
                    values[f"{prefix}/{label}/{column}_{stat}"] = float(value)
    return values


def _payload(results: list[StudyResult], records: Records, out: Path) -> tuple[dict, dict]:
    """(tables by key, summary values) of one analysis run."""
    tables, summary = {}, {}
    for result in results:
        name = result.study.stem
        tables[f"{name}/arms"] = result.arms
        summary |= _numbers(result.arms, result.study.rows, name)
        if not result.paired.empty:
            tables[f"{name}/paired"] = result.paired
            summary |= _numbers(result.paired, None, f"{name}/paired")
        if not result.questions.empty:
            tables[f"{name}/questions"] = result.questions
    runs = run_list(records, out).drop(columns=["link"])
    tables["runs"] = runs
    tables["environment"] = pd.DataFrame(environment(records.runs), columns=["what", "value"])
    summary["runs/finished"] = int((runs["status"] == "finished").sum())
    summary |= {f"runs/{status}": int(n) for status, n in runs["status"].value_counts().items() if status != "finished"}
    return tables, summary


def _split_by_group(results: list[StudyResult], records: Records) -> dict[str | None, tuple[list, Records]]:
    """The studies and runs of each W&B group (None: runs without one, and studies whose runs span groups)."""
    groups = sorted({r.wandb_group for r in results} | set(records.runs["wandb_group"].dropna())
                    | set(records.excluded["wandb_group"].dropna()), key=lambda g: (g is None, g or ""))
    split = {}
    for group in groups or [None]:
        def mine(frame, group=group):
            return frame[frame["wandb_group"].isna()] if group is None else frame[frame["wandb_group"] == group]

        chosen = [r for r in results if r.wandb_group == group]
        subset = Records(mine(records.runs), records.history, mine(records.excluded), records.wandb, records.outcomes)
        if chosen or not subset.runs.empty or not subset.excluded.empty:
            split[group] = (chosen, subset)
    return split


def log_analysis(results: list[StudyResult], records: Records, out: Path, mode: str, project: str | None = None,
                 sources: list[str] = ()) -> list[LoggedRun]:
    """One W&B run per group of the runs (mode offline or online; files under out/wandb/)."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    project = project or records.wandb.get("project") or DEFAULT_PROJECT
    logged = []
    for group, (chosen, subset) in _split_by_group(results, records).items():
        tables, summary = _payload(chosen, subset, out)
        run = wandb.init(mode=mode, project=project, entity=records.wandb.get("entity"), group=group,
                         job_type="analysis", name=f"analysis-{group}" if group else "analysis", dir=str(out),
                         tags=["analysis"], reinit="finish_previous",
                         config={"sources": list(sources), "studies": [r.study.stem for r in chosen]})
        run.log({key: _table(frame) for key, frame in tables.items()}
                | {f"plots/{p.stem}": wandb.Image(str(p)) for r in chosen for p in r.plots})
        run.summary.update(summary)
        logged.append(LoggedRun(run.name, group, "analysis", run.dir, list(tables), summary))
        run.finish()
    return logged
