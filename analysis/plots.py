"""PNG plots of training curves per factor level: the mean over seeds at each logged step, with a shaded
95% t-interval over seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.tables import ci95  # noqa: E402

# (history column, y-axis label). train_accuracy is TRL's rewards/accuracy/mean: a fraction, 0-1.
CURVES = (("mean_reward", "Mean reward"), ("completion_length", "Completion length (tokens)"),
          ("train_accuracy", "Training accuracy (fraction of samples correct)"))
BAND_NOTE = "line: mean over seeds; band: 95% CI over seeds"
# Sized to stay legible three abreast on index.html (about 400 pixels wide each) and alone.
STYLE = {"figure.figsize": (5.0, 3.6), "font.size": 10, "axes.titlesize": 10, "legend.fontsize": 9,
         "legend.title_fontsize": 9, "xtick.labelsize": 9, "ytick.labelsize": 9}


def curve_band(steps: pd.DataFrame, column: str) -> pd.DataFrame:
    """A row per logged step of `steps` (columns step, seed, `column`; one level's runs): mean, ci95
    (half-width of the 95% t-interval over seeds, NaN for fewer than two) and n (seeds).

    Runs that share a seed at a step (a plain multirun pools the other factors) are averaged first, so n
    counts seeds, as in the tables.
    """
    per_seed = steps.dropna(subset=[column]).groupby(["step", "seed"], dropna=False)[column].mean()
    by_step = per_seed.groupby(level="step")
    return pd.DataFrame({"mean": by_step.mean(), "ci95": by_step.agg(ci95), "n": by_step.size()}).rename_axis("step")


def plot_curves(runs: pd.DataFrame, history: pd.DataFrame, factors: tuple[str, ...], title: str,
                out_dir: Path, stem: str) -> list[Path]:
    """<stem>_by_<factor>_<curve>.png for each factor and each curve some run logged: a line per level of
    that factor (other factors pooled) with its 95% band over seeds. Nothing when the runs logged no steps."""
    steps = history.merge(runs[["run", "seed", *factors]], on="run")
    if steps.empty:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for factor in factors:
        for column, label in CURVES:
            if column not in steps or steps[column].isna().all():
                continue
            path = out_dir / f"{stem}_by_{factor}_{column}.png"
            with plt.rc_context(STYLE):
                _plot_levels(steps, factor, column, label, title, path)
            written.append(path)
    return written


def _plot_levels(steps: pd.DataFrame, factor: str, column: str, label: str, title: str, path: Path) -> None:
    fig, ax = plt.subplots()
    for level, group in steps.groupby(factor, sort=True):
        band = curve_band(group, column)
        n = int(band["n"].max()) if not band.empty else 0
        line, = ax.plot(band.index, band["mean"], marker=".", markersize=4, label=f"{level} (n={n})")
        ax.fill_between(band.index, band["mean"] - band["ci95"], band["mean"] + band["ci95"],
                        color=line.get_color(), alpha=0.18, linewidth=0)
    ax.set(xlabel="training step", ylabel=label.replace(" (", "\n("))
    ax.set_title(f"{title}\n{BAND_NOTE}", fontsize=9, color="#444")
    ax.grid(alpha=0.3)
    ax.legend(title=factor, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
