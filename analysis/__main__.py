"""`python -m analysis --runs DIR [DIR...] --out OUT`, `python -m analysis --wandb ENTITY/PROJECT
[--group SWEEP] --out OUT` or `python -m analysis --wandb-dir DIR [DIR...] --out OUT` (the W&B runs that wandb
wrote offline under those run folders, as they will read once synced): three tables per study (per arm; paired by seed
against each factor's reference level; question-level tests of each comparison; Markdown, LaTeX, CSV), training-curve plots (mean over seeds, 95% band) and OUT/index.html,
one static page with all of them, the run list (failed, half-written and set-aside runs included, never
averaged) and the environment. `--wandb-log offline|online` also logs the tables to a W&B "analysis" run
per sweep (files under OUT/wandb/)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from analysis.multiplicity import CORRECTIONS
from analysis.multiplicity import DEFAULT as DEFAULT_CORRECTION
from analysis.records import EXCLUDED_COLUMNS, NoRunsError, Records, scan_run_dirs, scan_wandb_runs
from analysis.report import write_index, write_studies
from analysis.wandb_offline import OfflineApi, OfflineReadError


def build_report(runs: pd.DataFrame, history: pd.DataFrame, out: Path, excluded: pd.DataFrame | None = None,
                 sources: list[str] = ()) -> list[Path]:
    """runs.csv, each study's tables and plots that the runs can fill, then index.html (`excluded`: the
    runs that did not finish, listed there)."""
    excluded = pd.DataFrame(columns=EXCLUDED_COLUMNS) if excluded is None else excluded
    records = Records(runs, history, excluded)
    results, written = write_studies(runs, history, out)
    return [*written, write_index(out, results, records, list(sources))]


def read_records(args) -> Records:
    """The runs of the source the arguments name: local run folders, the W&B API, or offline W&B files."""
    if args.runs:
        return scan_run_dirs(args.runs)
    if args.wandb:
        return scan_wandb_runs(args.wandb, args.group)
    api = OfflineApi(args.wandb_dir)
    return scan_wandb_runs(api.project, args.group, api)


def only_seeds(records: Records, seeds: list[int]) -> Records:
    """The records of the runs of these seeds (their history too)."""
    runs = records.runs[records.runs["seed"].isin(seeds)]
    excluded = records.excluded[records.excluded["seed"].isin(seeds)]
    history = records.history[records.history["run"].isin(runs["run"])]
    return Records(runs, history, excluded, records.wandb, records.outcomes)


def nothing_filled(runs: pd.DataFrame) -> str:
    """Why no study was filled, and what to run for a first table (a folder of single runs fills none)."""
    if runs.empty:
        return "no run finished"
    sweeps = sorted(str(s) for s in runs["sweep"].dropna().unique()) if "sweep" in runs else []
    found = f"found {len(runs)} finished run(s), " + (f"of sweep(s) {', '.join(sweeps)} with one level each"
                                                      if sweeps else "none from a named sweep, no factor varied")
    return (f"{found}. A study compares runs that differ in one factor, over seeds: for a first table in minutes run "
            "`python -m medvqa_rl -m sweep=bias debug=smoke` (6 smoke runs: 2 levels x 3 seeds), then "
            "`python -m analysis --runs multirun/bias-v1 --out tables` (the studies: docs/sweeps.md)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", nargs="+", metavar="DIR", help="run or sweep directories (searched recursively)")
    source.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs through the W&B API")
    source.add_argument("--wandb-dir", nargs="+", metavar="DIR",
                        help="read the offline W&B run files under these run or sweep folders (wandb/offline-run-*)")
    parser.add_argument("--group", help="with --wandb or --wandb-dir: only this W&B group (a sweep, e.g. bias-v1)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the tables, plots and index.html")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="only the runs of these seeds (e.g. --seeds 0: what a one-seed sweep would have shown)")
    parser.add_argument("--correction", choices=tuple(CORRECTIONS), default=DEFAULT_CORRECTION,
                        help="multiplicity adjustment of each study's verdicts (a family per study and metric: the "
                             "study's comparisons x test sets): holm (family-wise, default), bh (false discovery "
                             "rate), none")
    parser.add_argument("--wandb-log", choices=("disabled", "offline", "online"), default="disabled",
                        help="also log the tables to a W&B run (job_type analysis, the sweep's group) per sweep; "
                             "offline writes it under OUT/wandb/ (upload: wandb sync). Default: disabled")
    parser.add_argument("--wandb-project", help="with --wandb-log: the project (default: the runs' own)")
    args = parser.parse_args(argv)
    if args.group and args.runs:
        parser.error("--group goes with --wandb or --wandb-dir (local sweeps: pass the sweep's directory to --runs)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    try:
        records = read_records(args)
    except (NoRunsError, FileNotFoundError, OfflineReadError) as error:
        parser.exit(2, f"python -m analysis: error: {error}\n")
    if args.seeds is not None:
        records = only_seeds(records, args.seeds)
    group = f" (group {args.group})" if args.group else ""
    sources = args.runs or ([f"W&B {args.wandb}{group}"] if args.wandb else
                            [f"offline W&B files under {d}{group}" for d in args.wandb_dir])
    results, written = write_studies(records.runs, records.history, args.out, records.outcomes, args.correction)
    written.append(write_index(args.out, results, records, sources))
    print(f"{len(records.runs)} finished runs, {len(records.excluded)} listed only (not finished or set aside) "
          f"-> {len(written)} files in {args.out}; open {args.out / 'index.html'}")
    if not results:
        print("no study could be filled: " + nothing_filled(records.runs))
    for path in written:
        if path.suffix == ".md":
            print(path.read_text())
    if args.wandb_log != "disabled":
        from analysis.wandb_log import log_analysis

        for run in log_analysis(results, records, args.out, args.wandb_log, args.wandb_project, sources):
            print(f"W&B analysis run {run.name} (group {run.group}): {run.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
