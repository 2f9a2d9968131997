"""`python -m analysis.slim_records SRC DST`: a copy of the finished runs under SRC that is small enough to commit
and still regenerates every table (`python -m analysis --runs DST`), the question-level tests included.

Kept per run: metrics.json, history.jsonl, resolved_config.yaml, .hydra/, and each test set's per-question
outcomes (predictions.jsonl as predictions.jsonl.gz holding only the outcome fields: question id and digest,
correct, judge verdict, similarity, length; in test_sets/<set>/ for an extra set). Left out: models,
checkpoints, W&B files, logs, the completions' text. Sweep folders keep their multirun.yaml. Runs that did not
finish are not copied (the report lists them from SRC only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

from analysis.records import run_dirs
from medvqa_rl.bookkeeping.question_outcomes import PREDICTIONS, outcome_row, predictions_file, set_folders
from medvqa_rl.bookkeeping.run_record import finished_record, read_jsonl

INIT_PREDICTIONS = "init_predictions.jsonl"  # kept (slim) only when it holds sampled outcomes
KEPT = ("metrics.json", "history.jsonl", "resolved_config.yaml", ".hydra")


def slim_run(run_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        source = run_dir / name
        if source.is_dir():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, target / name)
    for folder in set_folders(run_dir).values():
        # init_predictions.jsonl too where it holds sampled outcomes (eval.samples): the sharpening summary pairs them
        init = folder / INIT_PREDICTIONS
        init_rows = read_jsonl(init) if init.exists() else []
        for path, name in ((predictions_file(folder), PREDICTIONS),
                           (init if init_rows and "samples_correct" in init_rows[0] else None, INIT_PREDICTIONS)):
            if path is None:
                continue
            out = target / folder.relative_to(run_dir) / f"{name}.gz"
            out.parent.mkdir(parents=True, exist_ok=True)
            # mtime=0: the same outcomes give the same bytes, so a rerun of this command changes no committed file.
            with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
                f.write("".join(json.dumps(outcome_row(r)) + "\n" for r in read_jsonl(path)).encode())


def slim_records(source: Path, target: Path) -> list[Path]:
    """Slim copies of the finished runs under source into target (same relative paths); returns the runs copied."""
    copied = []
    for run_dir, _ in run_dirs(source):
        if finished_record(run_dir) is None:
            continue
        slim_run(run_dir, target / run_dir.relative_to(source))
        copied.append(run_dir)
    for sweep in source.rglob("multirun.yaml"):
        (target / sweep.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sweep, target / sweep.relative_to(source))
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.slim_records", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a sweep root (sweep.root) or run folder")
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        parser.exit(2, f"python -m analysis.slim_records: error: {args.source}: no such directory\n")
    copied = slim_records(args.source, args.target)
    print(f"{len(copied)} finished run(s) copied from {args.source} to {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
