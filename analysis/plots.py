"""PNG plots of training curves per factor level: the mean over runs at each logged step."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

CURVES = (("mean_reward", "Mean reward"), ("completion_length", "Completion length (tokens)"))


def plot_curves(runs: pd.DataFrame, history: pd.DataFrame, factors: tuple[str, ...], title: str,
                out_dir: Path, stem: str) -> list[Path]:
    """<stem>_by_<factor>_<curve>.png for each factor and curve: one line per level of that factor
    (other factors and seeds pooled). Nothing when the runs logged no steps."""
    steps = history.merge(runs[["run", *factors]], on="run")
    if steps.empty:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for factor in factors:
        for column, label in CURVES:
            fig, ax = plt.subplots(figsize=(6, 4))
            for level, group in steps.groupby(factor, sort=True):
                curve = group.groupby("step")[column].mean()
                ax.plot(curve.index, curve.values, marker=".", label=str(level))
            ax.set(xlabel="training step", ylabel=label, title=title)
            ax.legend(title=factor, fontsize="small")
            fig.tight_layout()
            path = out_dir / f"{stem}_by_{factor}_{column}.png"
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(path)
    return written
