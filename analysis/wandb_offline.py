"""The W&B runs that wandb itself wrote offline (`<run_dir>/wandb/offline-run-*/run-<id>.wandb`), read into the
shape of the public API's runs, so `python -m analysis --wandb-dir DIR` gives the tables that `--wandb` gives
once they are synced, on an air-gapped cluster too.

wandb 0.31 has no Python reader for .wandb files; its CLI prints every record as a JSON line:
`wandb leet inspect --json <file>` (run: config, group, id; config; history; summary; exit). Attempts of one
run id (a resumed run writes one offline folder per attempt) are merged in time order, as `wandb sync` would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


class OfflineReadError(RuntimeError):
    """wandb's CLI could not read an offline run file."""


@dataclass
class OfflineRun:
    """One run as wandb.Api().runs() yields it: name, id, group, config, summary, state, url, history()."""

    id: str
    name: str
    group: str | None = None
    job_type: str | None = None
    project: str | None = None
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    state: str = "running"  # finished (exit code 0), failed (another exit code), running (no exit record)
    url: str | None = None  # the .wandb file (a local record, linked from the report)
    rows: list[dict] = field(default_factory=list)

    def file(self, name: str) -> OfflineFile:
        """A file the run saved (a logged Table's JSON, ...), as run.file(name) of the public API."""
        return OfflineFile(Path(self.url).parent / "files" / name)

    def history(self, keys: list[str], x_axis: str = "_step", pandas: bool = True) -> pd.DataFrame:
        """The logged rows that hold every key asked for (as the public API returns them): x_axis and keys."""
        columns = [x_axis, *keys]
        return pd.DataFrame([{c: row.get(c) for c in columns} for row in self.rows if all(k in row for k in columns)],
                            columns=columns)

    def add(self, record: dict) -> None:
        """Applies one JSON record of `wandb leet inspect --json`."""
        kind = record.get("type")
        body = record.get(kind) or {}
        if kind == "run":
            self.group = body.get("run_group") or self.group
            self.job_type, self.project = body.get("job_type") or self.job_type, body.get("project") or self.project
            self.config |= _config(body.get("config") or {})
            self.state = "running"
        elif kind == "config":
            self.config |= _config(body)
        elif kind == "summary":
            for key, value in (body.get("update") or {}).items():
                if key.startswith("_"):
                    continue
                # A logged Table's summary is a dict (the API's run.summary["test/outcomes"]["path"]); the reader
                # prints its fields as "<key>.<field>".
                head, dot, field_name = key.partition(".")
                if dot:
                    self.summary.setdefault(head, {})[field_name] = value
                else:
                    self.summary[key] = value
            for key in body.get("remove") or []:
                self.summary.pop(key, None)
        elif kind == "history":
            self.rows.append(body.get("item") or {})
        elif kind == "exit":
            self.state = "finished" if (body.get("exit_code") or 0) == 0 else "failed"


@dataclass
class OfflineFile:
    """A file of an offline run: download() opens it where it lies (the public API's copies it to root first)."""

    path: Path

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False):
        return self.path.open()


def _config(body: dict) -> dict:
    return {k: v for k, v in (body.get("update") or {}).items() if k != "_wandb"}


def offline_files(dirs: list[str | Path]) -> list[Path]:
    """Every .wandb file under the given folders (run dirs or sweep folders, searched recursively), in the
    order they were written (their folder names start with the time)."""
    found = []
    for root in map(Path, dirs):
        if not root.exists():
            raise FileNotFoundError(f"--wandb-dir {root}: no such directory")
        found += root.rglob("*.wandb")
    return sorted(set(found), key=lambda p: (p.parent.name.split("-", 2)[-1], str(p)))


def read_records(path: Path) -> list[dict]:
    """The records of one .wandb file, through wandb's own reader."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise OfflineReadError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def read_offline_runs(dirs: list[str | Path]) -> list[OfflineRun]:
    """The runs under dirs, one per run id. A run's name is the folder that holds its wandb/ folder (the run
    directory, as the local reader names runs)."""
    runs: dict[str, OfflineRun] = {}
    for path in offline_files(dirs):
        run_id = path.stem.removeprefix("run-")
        run_dir = path.parent.parent.parent if path.parent.parent.name == "wandb" else path.parent
        run = runs.setdefault(run_id, OfflineRun(id=run_id, name=str(run_dir), url=str(path)))
        run.url = str(path)
        for record in read_records(path):
            run.add(record)
    return list(runs.values())


class OfflineApi:
    """wandb.Api()'s runs(path, filters) over offline files: analysis.records.scan_wandb_runs reads it as it
    reads the server."""

    def __init__(self, dirs: list[str | Path]) -> None:
        self.all = read_offline_runs(dirs)

    @property
    def project(self) -> str:
        """The runs' project when they agree, else "offline"."""
        projects = {r.project for r in self.all if r.project}
        return projects.pop() if len(projects) == 1 else "offline"

    def runs(self, path: str | None = None, filters: dict | None = None) -> list[OfflineRun]:
        group = (filters or {}).get("group")
        return [r for r in self.all if group is None or r.group == group]
