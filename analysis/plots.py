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
          ("train_accuracy", "Training accuracy (fraction of samples correct)"),
          # TRL's diagnostics (analysis/records.py DIAGNOSTIC_KEYS), drawn where the runs logged them
          ("entropy", "Token entropy (nats)"), ("clip_ratio", "Clipped tokens (fraction)"),
          ("frac_reward_zero_std", "Groups with equal rewards (fraction)"), ("kl", "KL to the reference"))
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


def plot_forest(questions: pd.DataFrame, title: str, path: Path, metric: str = "accuracy") -> Path | None:
    """Every comparison's effect and deciding 95% interval (question_level: Hartung-Knapp at 2+ seeds, the paired t
    over questions at one), a panel per test set, for one metric; filled markers: resolved. None without rows."""
    rows = questions[(questions["metric"] == metric) & questions["effect"].notna()]
    if rows.empty:
        return None
    test_sets = list(dict.fromkeys(rows["test_set"]))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(test_sets), sharey=True, squeeze=False,
                                 figsize=(2.6 + 2.4 * len(test_sets), 1.2 + 0.32 * rows.groupby("test_set").size().max()))
        for ax, test_set in zip(axes[0], test_sets, strict=True):
            mine = rows[rows["test_set"] == test_set].iloc[::-1]
            labels = [f"{f}: {lv} − {ref}" for f, lv, ref in zip(mine["factor"], mine["level"], mine["reference"],
                                                                  strict=True)]
            y = range(len(mine))
            resolved = mine["verdict"].str.contains("resolved at", regex=False) & ~mine["verdict"].str.startswith("not")
            low, high = mine["low"].fillna(mine["effect"]), mine["high"].fillna(mine["effect"])
            ax.errorbar(mine["effect"], y, xerr=[mine["effect"] - low, high - mine["effect"]], fmt="none",
                        ecolor="#444", capsize=2, linewidth=1)
            ax.scatter(mine["effect"], y, s=22, zorder=3, edgecolors="#0969da",
                       facecolors=["#0969da" if r else "white" for r in resolved])
            ax.axvline(0, color="#999", linewidth=0.8)
            ax.set_yticks(list(y), labels)
            n = int(mine["n"].max())
            ax.set_title(f"{test_set} (n = {n} seed{'s' if n != 1 else ''})", fontsize=9)
            ax.set_xlabel(f"{metric} difference" + (" (points)" if metric in ("accuracy", "judge_score") else ""))
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle(f"{title}\neffect and 95% CI; filled: resolved", fontsize=9, color="#444")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=130)
        plt.close(fig)
    return path


def plot_interactions(cells: pd.DataFrame, factors: tuple[str, ...], title: str, path: Path) -> Path:
    """The factorial's two-way interaction plot: a panel per pair of factors, the first's levels on x, a line per
    level of the second, each point the cell means (accuracy, percent) averaged over the other factors and seeds.
    Parallel lines: no interaction."""
    pairs = [(a, b) for i, a in enumerate(factors) for b in factors[i + 1:]]
    with plt.rc_context(STYLE):
        columns = 3
        fig, axes = plt.subplots((len(pairs) + columns - 1) // columns, columns, squeeze=False,
                                 figsize=(10.5, 3.0 * ((len(pairs) + columns - 1) // columns)))
        for ax, (a, b) in zip(axes.ravel(), pairs, strict=False):
            means = cells.groupby([a, b])["y"].mean().unstack(b)
            for level in means.columns:
                ax.plot(range(len(means.index)), means[level], marker="o", markersize=4, label=f"{b}={level}")
            ax.set_xticks(range(len(means.index)), [str(v) for v in means.index])
            ax.set_xlabel(a)
            ax.set_ylabel("accuracy (%)")
            ax.legend(fontsize=7, loc="best")
            ax.grid(alpha=0.3)
        for ax in axes.ravel()[len(pairs):]:
            ax.set_visible(False)
        fig.suptitle(f"{title}\ncell means averaged over the other factors and seeds; parallel lines: no interaction",
                     fontsize=9, color="#444")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=130)
        plt.close(fig)
    return path
