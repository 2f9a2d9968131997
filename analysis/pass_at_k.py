"""Does training teach something new, or sharpen what the init could already sample? (Yue et al. 2025.) From runs
evaluated with eval.samples (medvqa_rl/evaluation/sampled.py):

- a pass@k curve per arm and test set: pass@k against k (log scale), the init dashed and the trained model solid,
  the mean over seeds (<stem>_pass_at_k_<set>.png);
- the sharpening summary (<stem>_sharpening.{md,csv}): per arm and test set, trained - init at k = 1 (pass@1: the
  mean over samples) and at the largest k, from the per-question outcomes both evaluations hold (samples_correct in
  predictions.jsonl and init_predictions.jsonl). Per seed the paired per-question differences give the effect and
  its question-level SE, clustered by image (analysis/clustered.py); with 2+ seeds the Hartung-Knapp estimate over
  seeds decides (analysis/seed_level.py, t on n - 1 df), with one seed the cluster bootstrap over images does
  (evaluation noise only). Sharpening reads: a gain at k = 1 that shrinks or turns negative at the largest k.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.clustered import cluster_bootstrap, cluster_se, clusters_of
from analysis.seed_level import seed_level
from medvqa_rl.bookkeeping.question_outcomes import IN_DOMAIN, pairing_key, outcome_row, set_folders
from medvqa_rl.bookkeeping.run_record import read_jsonl

_PASS = re.compile(r"test/(?:(?P<set>[^/]+)/)?pass@(?P<k>\d+)")
INIT_PREDICTIONS = "init_predictions.jsonl"
PREDICTIONS = "predictions.jsonl"
COLUMNS = ("arm", "test_set", "k", "init", "trained", "effect", "low", "high", "seeds", "questions", "images",
           "decided_by")


def pass_columns(columns) -> dict[str, list[int]]:
    """Test set (IN_DOMAIN or its name) -> the k of its trained test/[<set>/]pass@<k> columns, sorted."""
    found: dict[str, set[int]] = {}
    for column in columns:
        if (m := _PASS.fullmatch(column)) is not None:
            found.setdefault(m["set"] or IN_DOMAIN, set()).add(int(m["k"]))
    return {name: sorted(ks) for name, ks in sorted(found.items(), key=lambda item: (item[0] != IN_DOMAIN, item[0]))}


def _column(test_set: str, k: int, init: bool) -> str:
    middle = "" if test_set == IN_DOMAIN else f"{test_set}/"
    return f"{'init/' if init else ''}test/{middle}pass@{k}"


def _arms(runs: pd.DataFrame, factors: tuple[str, ...]):
    present = [f for f in factors if f in runs]
    if not present:
        yield "all runs", runs
        return
    for key, frame in runs.groupby(present, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield ", ".join(f"{f}={v}" for f, v in zip(present, key, strict=True)), frame


def _seed_mean(frame: pd.DataFrame, column: str) -> float:
    if column not in frame:
        return float("nan")
    return float(frame.groupby("seed", dropna=False)[column].mean().mean())


def plot_pass_at_k(runs: pd.DataFrame, factors: tuple[str, ...], title: str, out_dir: Path, stem: str) -> list[Path]:
    """One PNG per test set with pass@k columns: a curve per arm, init dashed, trained solid (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for test_set, ks in pass_columns(runs.columns).items():
        fig, ax = plt.subplots(figsize=(5.0, 3.6))
        for i, (arm, frame) in enumerate(_arms(runs, factors)):
            color = f"C{i % 10}"
            trained = [_seed_mean(frame, _column(test_set, k, False)) for k in ks]
            init = [_seed_mean(frame, _column(test_set, k, True)) for k in ks]
            ax.plot(ks, init, linestyle="--", color=color, marker="o", markersize=3)
            ax.plot(ks, trained, linestyle="-", color=color, marker="o", markersize=3, label=arm)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("k (samples)")
        ax.set_ylabel("pass@k (%)")
        ax.set_title(f"{title}: pass@k, {test_set} (init dashed, trained solid)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"{stem}_pass_at_k_{test_set}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def sampled_outcomes(run: str | Path, name: str) -> dict[str, dict[str, dict]]:
    """Test set -> pairing key -> outcome row with samples_correct, from a run folder's `name` (predictions.jsonl or
    init_predictions.jsonl, or their slim .gz); sets without sampled outcomes are left out."""
    found = {}
    for test_set, folder in set_folders(Path(run)).items():
        path = next((p for p in (folder / name, folder / f"{name}.gz") if p.exists()), None)
        if path is None:
            continue
        rows = [outcome_row(r) for r in read_jsonl(path)]
        if rows and "samples_correct" in rows[0]:
            found[test_set] = {pairing_key(r): r for r in rows}
    return found


def _question_pass(row: dict, k: int) -> float:
    correct = row["samples_correct"]
    n, c = len(correct), sum(correct)
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def sharpening(runs: pd.DataFrame, factors: tuple[str, ...]) -> pd.DataFrame:
    """A row per arm, test set and k in {1, largest}: init and trained pass@k (percent, mean over seeds), the effect
    trained - init (points) with its 95% interval (COLUMNS; see the module's docstring for the procedure)."""
    rows = []
    for arm, frame in _arms(runs, factors):
        per_seed: dict[tuple[str, int], list] = {}
        for _, run in frame.iterrows():
            trained, init = sampled_outcomes(run["run"], PREDICTIONS), sampled_outcomes(run["run"], INIT_PREDICTIONS)
            for test_set in trained.keys() & init.keys():
                keys = sorted(trained[test_set].keys() & init[test_set].keys())
                if not keys:
                    continue
                n = min(len(trained[test_set][keys[0]]["samples_correct"]), len(init[test_set][keys[0]]["samples_correct"]))
                for k in sorted({1, n}):
                    a = np.array([_question_pass(trained[test_set][key], k) for key in keys]) * 100
                    b = np.array([_question_pass(init[test_set][key], k) for key in keys]) * 100
                    images = clusters_of([trained[test_set][key].get("image_key") for key in keys])
                    per_seed.setdefault((test_set, k), []).append((run["seed"], a, b, images))
        for (test_set, k), seeds in sorted(per_seed.items(), key=lambda item: (item[0][0] != IN_DOMAIN, item[0])):
            effects = np.array([(a - b).mean() for _, a, b, _ in seeds])
            ses = np.array([cluster_se(a - b, images) for _, a, b, images in seeds])
            if len(seeds) >= 2:
                decided = seed_level(effects, ses)
                low, high, how = decided.low, decided.high, f"Hartung-Knapp over {len(seeds)} seeds (t, df = {len(seeds) - 1})"
            else:
                _, a, b, images = seeds[0]
                interval = cluster_bootstrap(a - b, images)
                low, high, how = interval.low, interval.high, "cluster bootstrap over images (one seed: evaluation noise only)"
            rows.append({"arm": arm, "test_set": test_set, "k": k,
                         "init": float(np.mean([b.mean() for _, _, b, _ in seeds])),
                         "trained": float(np.mean([a.mean() for _, a, _, _ in seeds])),
                         "effect": float(effects.mean()), "low": float(low), "high": float(high), "seeds": len(seeds),
                         "questions": int(np.mean([len(a) for _, a, _, _ in seeds])),
                         "images": int(np.mean([len(np.unique(c)) for _, _, _, c in seeds])), "decided_by": how})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_sharpening(runs: pd.DataFrame, factors: tuple[str, ...], title: str, stem: str, out: Path) -> list[Path]:
    """<stem>_sharpening.{md,csv} and the pass@k plots under out/plots; nothing when no run sampled."""
    # A table built over several studies holds every study's columns: a study's own runs sampled where a value is set.
    runs = runs.dropna(axis=1, how="all")
    if not pass_columns(runs.columns):
        return []
    written = plot_pass_at_k(runs, factors, title, out / "plots", stem)
    frame = sharpening(runs, factors)
    if frame.empty:
        return written
    frame.to_csv(out / f"{stem}_sharpening.csv", index=False)
    shown = frame.assign(effect=[f"{e:+.1f} [{lo:+.1f}, {hi:+.1f}]" for e, lo, hi in
                                 zip(frame["effect"], frame["low"], frame["high"], strict=True)],
                         init=frame["init"].map("{:.1f}".format), trained=frame["trained"].map("{:.1f}".format))
    shown = shown.drop(columns=["low", "high"])
    note = ("trained - init pass@k (points) on the questions both evaluations answered, at k = 1 (the mean over "
            "samples) and at the largest k; 95% interval: question-level, clustered by image. A gain at k = 1 that "
            "vanishes at the largest k is sharpening (RL reweights what the init could already sample).")
    (out / f"{stem}_sharpening.md").write_text(f"### {title}: sharpening (pass@k, trained - init)\n\n{note}\n\n"
                                               + shown.to_markdown(index=False) + "\n")
    return [*written, out / f"{stem}_sharpening.md", out / f"{stem}_sharpening.csv"]
