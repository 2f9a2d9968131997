"""How much the embedded default learns, over seeds and tiny-model builds: the numbers the README quotes.

Runs `python -m medvqa_rl seed=S [family.build.seed=B]` for every seed S and build B, each in its own run
folder, and prints (and writes to --out) init vs trained greedy test accuracy, the gain, the format rate
before and after, and wall time, then the mean and range of the gain per build. Build "shipped" is the
checkpoint shipped with the package; a number B builds the tiny base and instruct afresh from the recipe with family.build.seed=B (cached in
--cache, so its first run includes the build time).

Usage: python benchmarks/default_gain.py --seeds 0 1 2 --builds shipped 1 --jobs 2 --out results/default_gain
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd


def one_run(seed: int, build: str, args) -> dict:
    run_dir = args.runs / f"build-{build}" / f"seed-{seed}"
    overrides = [f"seed={seed}", f"hydra.run.dir={run_dir}", "eval.progress=false", "wandb.mode=disabled",
                 *([] if build == "shipped" else [f"family.build.seed={build}"]), *args.overrides]
    env = {**os.environ, "MEDVQA_RL_CACHE": str(args.cache), "OMP_NUM_THREADS": str(args.threads)}
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "medvqa_rl", *overrides], env=env, capture_output=True, text=True)
    wall = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(f"seed {seed}, build {build} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    init, final = metrics["init/test/accuracy"], metrics["test/accuracy"]
    # Accuracy counts only well-formed completions (docs/metrics.md#format), so the format rate bounds it.
    return {"build": build, "seed": seed, "init_accuracy": init, "accuracy": final, "gain": final - init,
            "init_format": metrics["init/test/format_rate"], "format": metrics["test/format_rate"],
            "wall_s": round(wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--builds", nargs="+", default=["shipped"], help='"shipped" or family.build.seed values')
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each gets --threads threads)")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("--runs", type=Path, default=Path("outputs/default_gain"))
    parser.add_argument("--cache", type=Path, default=Path("outputs/default_gain/cache"))
    parser.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.csv")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    points = [(seed, build) for build in args.builds for seed in args.seeds]
    # A fresh build is made once, by the first run that needs it; the others wait on its file lock.
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda point: one_run(*point, args), points))
    runs = pd.DataFrame(rows).round(1)
    summary = runs.groupby("build", sort=False)["gain"].agg(["mean", "min", "max", "count"]).round(1)
    text = (f"Embedded default, `python -m medvqa_rl seed=S` ({' '.join(args.overrides) or 'no other overrides'}); "
            f"greedy accuracy and format rate on the 1,000 synthetic test questions, percent. {args.jobs} run(s) at once "
            f"with {args.threads} torch thread(s) each: wall_s is one run's wall time under that load, not a lone run's "
            + ("(one build, the shipped checkpoints: no run includes a build).\n\n" if args.builds == ["shipped"] else
               "(a fresh build's first run includes the build unless the --cache folder held it).\n\n")
            + f"{runs.to_markdown(index=False)}\n\n"
            f"Gain per build (points):\n\n{summary.to_markdown()}\n")
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(f"# The embedded default's gain\n\n{text}")
        runs.to_csv(args.out.with_suffix(".csv"), index=False)


if __name__ == "__main__":
    main()
