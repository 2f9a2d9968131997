"""`python -m analysis --runs DIR [DIR...] --out OUT` or `python -m analysis --wandb ENTITY/PROJECT
[--group SWEEP] --out OUT`: the paper's tables (per arm, and paired by seed against each factor's
reference level; Markdown, LaTeX, CSV) and training-curve plots."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from analysis.paired import write_paired
from analysis.plots import plot_curves
from analysis.records import load_run_dirs, load_wandb_runs
from analysis.studies import STUDIES, study_runs
from analysis.tables import summarize, write_table


def build_report(runs, history, out: Path) -> list[Path]:
    """runs.csv (a row per run), then each study's tables (per arm, then paired by seed against the
    reference levels) and plots that the runs can fill."""
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    written = [out / "runs.csv"]
    for study in STUDIES:
        chosen = study_runs(runs, study)
        if chosen.empty:
            continue
        written += write_table(summarize(chosen, study.rows), study.rows, study.title, out / study.name)
        written += write_paired(chosen, study, out)
        written += plot_curves(chosen, history, study.rows, study.title, out / "plots", study.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", nargs="+", metavar="DIR", help="run or sweep directories (searched recursively)")
    source.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read finished runs through the W&B API")
    parser.add_argument("--group", help="with --wandb: only this W&B group (a sweep, e.g. bias-v1)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the tables and plots")
    args = parser.parse_args(argv)
    if args.group and not args.wandb:
        parser.error("--group goes with --wandb (local sweeps: pass the sweep's directory to --runs)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    runs, history = load_run_dirs(args.runs) if args.runs else load_wandb_runs(args.wandb, args.group)
    written = build_report(runs, history, args.out)
    print(f"{len(runs)} runs -> {len(written)} files in {args.out}")
    for path in written:
        if path.suffix == ".md":
            print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
