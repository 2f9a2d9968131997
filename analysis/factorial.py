"""The full factorial analysed as one: main effects and every two-way interaction of the four GRPO factors from one
linear model of the runs' per-question outcomes (a linear-probability model for accuracy: every metric is a mean over
questions), with sum coding so that each effect averages over the other factors' cells, tested against two noises.

- Evaluation noise: the run means' covariance from the per-question outcomes, clustered by question within a seed
  (runs of one seed answer the same questions): V[r, r'] = sum_q e_rq e_r'q / m^2; an effect's variance is
  c' A V A' c with A the OLS map from run means to coefficients (the cluster sandwich).
- Run-to-run noise: the scatter of the run means around the model. With replicate seeds (pure-error df >= MIN_DF:
  cells run at 2+ seeds), the saturated model (every cell, seed blocks) leaves only seed-to-seed scatter in its
  residual; otherwise the two-way model's residual, the pooled 3- and 4-way interactions (the textbook error of an
  unreplicated factorial; it assumes those interactions are noise, so large ones make it conservative).

The verdict reads the run-to-run test (t on the residual df), its p adjusted within a family (the factorial's
contrasts x test sets, one family per metric). Each effect is refitted without each cell in turn (two-way model):
when leaving one cell out flips its sign or halves it, the row names that cell.

Effects are contrasts of cell means: level − reference (analysis/studies.py's REFERENCE_LEVELS) for a main effect;
(a − a0) × (b − b0), the difference of differences, for an interaction; both averaged over the other factors' cells.
Units: the metric's (points for accuracy and judge score in percent, tokens for length).
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from scipy import stats

from analysis.detectable import detectable_from_se
from analysis.multiplicity import DEFAULT as DEFAULT_CORRECTION
from analysis.multiplicity import TITLES as CORRECTION_TITLES
from analysis.multiplicity import adjust, family_size
from analysis.question_level import METRICS, UNITS, _p
from analysis.studies import REFERENCE_LEVELS
from analysis.tables import IN_DOMAIN, latex_escape, write_formats
from medvqa_rl.bookkeeping.question_outcomes import OutcomeReader, local_outcomes

log = logging.getLogger(__name__)

MIN_DF = 3  # pure-error df below which the replicate seeds are too few to stand for run-to-run noise
ALPHA = 0.05
COLUMNS = ["test_set", "metric", "term", "contrast", "effect", "eval_se", "p_eval", "run_se", "run_df", "run_noise",
           "p_run", "p_adjusted", "family", "detectable", "one_cell", "verdict", "seeds", "note"]


@dataclass
class Design:
    """One test set and metric: a row per run cell and seed (factor levels, seed, mean, runs), the per-seed
    matrices of centred per-question values (rows in `cells`' order) and what is missing or unusable."""

    cells: pd.DataFrame
    centred: dict  # seed -> (row positions in cells, array runs x questions)
    note: str = ""


def factorial_effects(runs: pd.DataFrame, factors: tuple[str, ...], outcomes: OutcomeReader = local_outcomes,
                      reference: dict[str, str] = REFERENCE_LEVELS,
                      correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    """A row per (test set, metric, contrast) (COLUMNS); attrs: correction, cells (present/expected), seeds per cell,
    missing cells. Empty when the runs hold no per-question outcomes."""
    read = cache(outcomes)
    runs = runs.dropna(subset=list(factors))
    if runs.empty or any(not read(r) for r in runs["run"]):
        return pd.DataFrame(columns=COLUMNS)
    levels = {f: sorted(runs[f].unique()) for f in factors}
    expected = list(itertools.product(*levels.values()))
    present = set(map(tuple, runs[list(factors)].to_numpy()))
    missing = [c for c in expected if c not in present]
    rows, cell_means = [], {}
    test_sets = set.intersection(*(set(read(r)) for r in runs["run"]))
    for test_set in sorted(test_sets, key=lambda s: (s != IN_DOMAIN, s)):
        for metric, field, scale, _ in METRICS:
            if not all(_has(read(r)[test_set], field) for r in runs["run"]):
                continue
            design = _design(runs, factors, read, test_set, field, scale)
            labels = {"test_set": test_set, "metric": metric}
            if metric == "accuracy" and not design.cells.empty:
                cell_means[test_set] = design.cells
            if design.note and design.cells.empty:
                rows.append(labels | {"note": design.note})
                continue
            rows += [labels | row for row in _effects(design, factors, levels, reference)]
    frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
    frame["p_adjusted"], frame["family"] = np.nan, 0
    for _, group in frame.groupby("metric", sort=False):
        frame.loc[group.index, "p_adjusted"] = adjust(group["p_run"].astype(float), correction)
        frame.loc[group.index, "family"] = family_size(group["p_run"].astype(float))
    frame["verdict"] = [_verdict(r, CORRECTION_TITLES[correction]) for r in frame.to_dict("records")]
    seeds = runs.groupby(list(factors))["seed"].nunique()
    frame.attrs.update(correction=correction, cells=(len(present), len(expected)), missing=missing,
                       seeds_per_cell=seeds.value_counts().sort_index().to_dict(), factors=factors,
                       all_seeds=sorted(runs["seed"].unique()), cell_means=cell_means)
    return frame


def _has(outcomes: dict, field: str) -> bool:
    return bool(outcomes) and all(row.get(field) is not None for row in outcomes.values())


def _design(runs: pd.DataFrame, factors, read, test_set: str, field: str, scale: float) -> Design:
    """Run means per cell and seed (runs sharing both averaged per question first) and the centred per-question
    values per seed. Within a seed, every run must hold the same questions (else a note and no design)."""
    cells, centred = [], {}
    for seed, seed_runs in runs.groupby("seed", sort=True):
        matrices, keys = [], None
        for levels, group in seed_runs.groupby(list(factors), sort=True):
            maps = [{k: float(row[field]) * scale for k, row in read(r)[test_set].items()} for r in group["run"]]
            if keys is None:
                keys = sorted(maps[0], key=str)
            if any(set(m) != set(keys) for m in maps):
                return Design(pd.DataFrame(), {}, f"runs of seed {seed} were not scored on the same test questions")
            values = np.mean([[m[k] for k in keys] for m in maps], axis=0)
            if not np.all(np.isfinite(values)):
                return Design(pd.DataFrame(), {}, f"a per-question {field} of seed {seed} is not a finite number")
            cells.append(dict(zip(factors, levels if isinstance(levels, tuple) else (levels,)))
                         | {"seed": seed, "y": float(values.mean()), "runs": len(group)})
            matrices.append(values - values.mean())
        start = len(cells) - len(matrices)
        centred[seed] = (np.arange(start, len(cells)), np.array(matrices))
    return Design(pd.DataFrame(cells), centred)


def _formula(factors, order: int, seeds: int) -> str:
    terms = " + ".join(f"C({f}, Sum)" for f in factors)
    body = f"({terms})**{order}" if order < len(factors) else " * ".join(f"C({f}, Sum)" for f in factors)
    return body + (" + C(seed)" if seeds > 1 else "")


def _fit(cells: pd.DataFrame, factors, order: int):
    """OLS of the run means on the sum-coded model of the given order (+ seed blocks): (result, design_info), or
    None when the cells present cannot estimate it."""
    y, x = patsy.dmatrices("y ~ " + _formula(factors, order, cells["seed"].nunique()), cells,
                           return_type="dataframe")
    if np.linalg.matrix_rank(x.to_numpy()) < x.shape[1]:
        return None
    return sm.OLS(y.iloc[:, 0], x).fit(), x.design_info


def _contrasts(design_info, factors, levels: dict, reference: dict, seed) -> list[tuple[str, str, np.ndarray]]:
    """(term, contrast label, vector over the coefficients) of every main effect (level − reference) and two-way
    interaction ((a − a0) × (b − b0)), each averaged over the full grid of the other factors' levels."""
    grid = pd.DataFrame(list(itertools.product(*levels.values())), columns=list(factors)).assign(seed=seed)
    (x,) = patsy.build_design_matrices([design_info], grid, return_type="dataframe")
    x = x.to_numpy()
    at = lambda **chosen: np.all([grid[f] == v for f, v in chosen.items()], axis=0)  # noqa: E731
    mean = lambda mask: x[mask].mean(axis=0)  # noqa: E731
    found = []
    for f in factors:
        ref = reference.get(f, levels[f][0])
        for level in (lv for lv in levels[f] if lv != ref):
            found.append((f, f"{level} − {ref}", mean(at(**{f: level})) - mean(at(**{f: ref}))))
    for f, g in itertools.combinations(factors, 2):
        f0, g0 = reference.get(f, levels[f][0]), reference.get(g, levels[g][0])
        for a in (lv for lv in levels[f] if lv != f0):
            for b in (lv for lv in levels[g] if lv != g0):
                vector = (mean(at(**{f: a, g: b})) - mean(at(**{f: a, g: g0}))
                          - mean(at(**{f: f0, g: b})) + mean(at(**{f: f0, g: g0})))
                found.append((f"{f} × {g}", f"({a} − {f0}) × ({b} − {g0})", vector))
    return found


def _effects(design: Design, factors, levels: dict, reference: dict) -> list[dict]:
    cells = design.cells
    replicated = len(cells) - cells[list(factors)].drop_duplicates().shape[0] - (cells["seed"].nunique() - 1)
    full = cells[list(factors)].drop_duplicates().shape[0] == int(np.prod([len(v) for v in levels.values()]))
    saturated = _fit(cells, factors, len(factors)) if full and replicated >= MIN_DF else None
    two_way = _fit(cells, factors, 2)
    if two_way is None:
        return [{"note": "the cells present cannot estimate the two-way model (too many missing)"}]
    model, info = saturated or two_way
    if saturated:
        source = f"replicate seeds, {int(model.df_resid)} df"
    elif len(cells) > cells[list(factors)].drop_duplicates().shape[0]:  # some replicates, too few or a cell missing
        source = f"pooled 3-/4-way interactions and replicate seeds, {int(model.df_resid)} df"
    else:
        source = f"pooled 3-/4-way interactions, {int(model.df_resid)} df"
    seeds = ",".join(map(str, sorted(cells["seed"].unique())))
    a_map = np.linalg.pinv(model.model.exog)  # coefficients = a_map @ run means
    v = np.zeros((len(cells), len(cells)))
    for positions, matrix in design.centred.values():
        m = matrix.shape[1]
        v[np.ix_(positions, positions)] = matrix @ matrix.T / m**2
    eval_cov = a_map @ v @ a_map.T
    run_cov = model.cov_params().to_numpy()
    df = int(model.df_resid)
    rows, worst = [], _left_out(cells.reset_index(drop=True), factors, levels, reference)
    for term, label, c in _contrasts(info, factors, levels, reference, cells["seed"].iloc[0]):
        effect = float(c @ model.params.to_numpy())
        eval_se = math.sqrt(max(float(c @ eval_cov @ c), 0.0))
        run_se = math.sqrt(max(float(c @ run_cov @ c), 0.0)) if df > 0 else float("nan")
        p_eval = _two_sided(effect, eval_se, None)
        p_run = _two_sided(effect, run_se, df) if df > 0 else float("nan")
        note = "" if df > 0 else "no residual df: run-to-run noise unmeasurable"
        if run_se == 0 and eval_se == 0:
            note = "zero variance: every run scores the same on this metric"
        rows.append({"term": term, "contrast": label, "effect": effect, "eval_se": eval_se, "p_eval": p_eval,
                     "run_se": run_se, "run_df": df, "run_noise": source, "p_run": p_run,
                     "detectable": detectable_from_se(run_se, df), "seeds": seeds,
                     # only an effect beyond evaluation noise has something for one cell to drive
                     "one_cell": _one_cell(worst, term, label, effect) if p_eval < ALPHA else "", "note": note})
    return rows


def _two_sided(effect: float, se: float, df: int | None) -> float:
    if math.isnan(se):
        return float("nan")
    if se == 0:
        return 1.0 if effect == 0 else 0.0
    distribution = stats.norm if df is None else stats.t(df)
    return float(2 * distribution.sf(abs(effect / se)))


def _left_out(cells: pd.DataFrame, factors, levels, reference) -> dict:
    """{(term, contrast): (the cell whose leaving out moves the effect most, the effect without it)}: the two-way
    model's columns built once for every cell, refitted by least squares on the cells left (all seeds of one cell
    out at a time; the model then predicts that cell from the others)."""
    fitted = _fit(cells, factors, 2)
    if fitted is None:
        return {}
    _, info = fitted
    (x,) = patsy.build_design_matrices([info], cells, return_type="matrix")
    x, y = np.asarray(x), cells["y"].to_numpy()
    contrasts = _contrasts(info, factors, levels, reference, cells["seed"].iloc[0])
    full = {(t, lab): float(c @ np.linalg.lstsq(x, y, rcond=None)[0]) for t, lab, c in contrasts}
    worst: dict = {}
    for key, group in cells.groupby(list(factors), sort=True):
        keep = ~cells.index.isin(group.index)
        if np.linalg.matrix_rank(x[keep]) < x.shape[1]:
            continue
        params = np.linalg.lstsq(x[keep], y[keep], rcond=None)[0]
        for term, label, c in contrasts:
            value = float(c @ params)
            best = worst.get((term, label))
            if best is None or abs(value - full[(term, label)]) > abs(best[1] - full[(term, label)]):
                worst[(term, label)] = (key, value)
    return worst


def _one_cell(worst: dict, term: str, label: str, effect: float) -> str:
    """The cell named when leaving it out flips the effect's sign or shrinks it below half: one cell drives it."""
    if (term, label) not in worst or effect == 0:
        return ""
    key, value = worst[(term, label)]
    if np.sign(value) != np.sign(effect) or abs(value) < abs(effect) / 2:
        return f"{'/'.join(map(str, key))}: {value:+.2f} without it"
    return ""


def _verdict(row: dict, adjusted: str) -> str:
    if pd.isna(row.get("p_adjusted")):
        return row.get("note") or "-"
    direction = "higher" if row["effect"] > 0 else "lower"
    noise = f"against run-to-run noise: {row['run_noise']}"
    driven = f"; driven by one cell ({row['one_cell']})" if row.get("one_cell") else ""
    if row["p_adjusted"] < ALPHA:
        return f"{direction}: resolved {noise} ({adjusted} = {_p(row['p_adjusted'])}){driven}"
    unit = UNITS.get(row["metric"], "")
    size = "not estimable" if pd.isna(row["detectable"]) else f"about {row['detectable']:.1f}" + (
        f" {unit}" if unit else "")
    return f"not resolved {noise} (detectable: {size}; {adjusted} = {_p(row['p_adjusted'])}){driven}"


def note(frame: pd.DataFrame) -> str:
    """The table's header line: the model, both noises, the family, the cells and seeds it rests on."""
    present, expected = frame.attrs.get("cells", (0, 0))
    missing = frame.attrs.get("missing", [])
    seeds = frame.attrs.get("seeds_per_cell", {})
    per_cell = ", ".join(f"{n} cell(s) at {k} seed(s)" for k, n in seeds.items())
    text = ("the factorial as one linear model of the per-question outcomes (sum coding): effect = a contrast of cell "
            "means averaged over the other factors' cells (main: level − reference; interaction: difference of "
            "differences); eval SE and p: evaluation noise (run means' covariance clustered by question within a "
            "seed); run SE, df and p: run-to-run noise (replicate seeds when cells are run at 2+ seeds, else the "
            "pooled 3-/4-way interactions, which assumes they are noise); "
            f"{CORRECTION_TITLES[frame.attrs.get('correction', DEFAULT_CORRECTION)]}: the run-to-run p adjusted "
            "within the family = the factorial's contrasts x test sets, one family per metric; verdict: resolved when "
            "that adjusted p < 0.05; driven by one cell: an effect beyond evaluation noise that leaving one cell out (two-way model on the rest) flips or halves; "
            f"cells: {present} of {expected} ({per_cell})")
    if missing:
        text += "; missing: " + "; ".join("/".join(map(str, m)) for m in missing) + " (estimated through the " \
                "two-way model from the cells present)"
    return text


def display(frame: pd.DataFrame, escape=lambda s: s) -> pd.DataFrame:
    titles = {m: t for m, _, _, t in METRICS}
    adjusted = CORRECTION_TITLES[frame.attrs.get("correction", DEFAULT_CORRECTION)]
    num = lambda v, f: "-" if pd.isna(v) else f(v)  # noqa: E731
    shown = pd.DataFrame({
        "test set": frame["test_set"], "metric": frame["metric"].map(titles), "term": frame["term"].fillna("-"),
        "contrast": frame["contrast"].fillna("-"), "effect": frame["effect"].map(lambda v: num(v, "{:+.2f}".format)),
        "eval SE": frame["eval_se"].map(lambda v: num(v, "{:.2f}".format)),
        "eval p": frame["p_eval"].map(lambda v: num(v, _p)),
        "run SE (df)": [num(s, "{:.2f}".format) + ("" if pd.isna(d) else f" ({int(d)})")
                        for s, d in zip(frame["run_se"], frame["run_df"], strict=True)],
        "run p": frame["p_run"].map(lambda v: num(v, _p)),
        adjusted: frame["p_adjusted"].map(lambda v: num(v, _p)),
        "verdict": frame["verdict"].fillna("-"),
    })
    text = ["test set", "metric", "term", "contrast", "verdict"]
    shown[text] = shown[text].map(lambda v: escape(str(v)))
    return shown.rename(columns=escape)


def write_factorial(frame: pd.DataFrame, stem: str, title: str, out_dir: Path) -> list[Path]:
    """<stem>_effects.csv/.md/.tex; nothing when the runs hold no per-question outcomes."""
    if frame.empty:
        return []
    return write_formats(frame, display(frame), display(frame, latex_escape), 4, f"{title}: main effects and "
                         "two-way interactions", out_dir / f"{stem}_effects", note(frame))
