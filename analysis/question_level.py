"""The verdicts: every paired comparison (level vs the factor's reference, as analysis/paired.py pairs them), per test
set and metric, decided by one procedure on the per-question outcomes both arms answered.

For each comparison, test set and metric (accuracy, judge score, similarity, completion length):
1. a pair is a run at the level and a run at the reference with the same seed and the same other factors
   (runs sharing a cell are averaged per question first); its per-question difference level - reference is
   taken on the question ids both hold (analysis.significance.paired_values refuses arms scored on other
   questions); a seed's difference is the mean over its pairs (the factorial's other-factor combinations). Only
   seeds that pair every combination the fullest seed pairs enter (else seeds would estimate different things);
   the others are named in the row's note;
2. the decision: with two or more seeds, the Hartung-Knapp random-effects estimate over the seeds' mean
   differences and their question-level SEs (analysis/seed_level.py: t on k - 1 df; the interval shown is its
   interval); with one seed, the paired t-test over questions (evaluation noise only: run-to-run noise is
   unmeasured, and the verdict says so);
3. every p is adjusted within the study's family (its comparisons x test sets x metrics: the table's rows with
   a test; analysis/multiplicity.py, Holm by default), and the verdict reads the adjusted p: "resolved", or "not
   resolved at n = k seeds (detectable: about X)" with X the difference the same test finds with 80% power at
   this design (analysis/detectable.py, the study's noise pooled over its comparisons);
4. described beside it, deciding nothing: a paired bootstrap interval over questions (every seed's questions
   pooled) and exact McNemar tests (accuracy, one run per arm and seed), pooled and per seed.

Questions that share an image (VQA-RAD, SLAKE: a scan asked about 5-10 times) are not independent: where the outcome
rows carry image_key (records written since the evaluation stored it), a seed's SE of its mean difference is the
cluster-robust one by image (analysis/clustered.py; the one-seed t then has df = images - 1), the bootstrap
resamples images (pooled over seeds, an image is a cluster within its seed), and the row's note says how many images
the test set has. With one question per image, or rows without image keys (older records: every question is its
own cluster), the numbers are exactly the unclustered ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from scipy import stats

from analysis.clustered import cluster_bootstrap, cluster_se, clusters_of
from analysis.detectable import Noise, minimum_detectable, noise
from analysis.multiplicity import DEFAULT as DEFAULT_CORRECTION
from analysis.multiplicity import TITLES as CORRECTION_TITLES
from analysis.multiplicity import adjust, family_size
from analysis.paired import pairing_frame
from analysis.seed_level import question_se, seed_level
from analysis.significance import CONFIDENCE, UnpairedError, mcnemar_exact, paired_bootstrap, paired_values
from analysis.studies import REFERENCE_LEVELS, Study
from analysis.tables import IN_DOMAIN, latex_escape, write_formats
from medvqa_rl.bookkeeping.question_outcomes import OutcomeReader, local_outcomes

log = logging.getLogger(__name__)

# (metric, outcome field, scale to the tables' unit, title): the tables' metrics that are a mean over questions.
UNITS = {"accuracy": "points", "judge_score": "points", "similarity": "", "completion_tokens": "tokens"}
METRICS = (("accuracy", "correct", 100.0, "Accuracy (%)"),
           ("judge_score", "judge_verdict", 100.0, "Judge score (%)"),
           ("similarity", "similarity", 1.0, "Similarity"),
           ("completion_tokens", "completion_tokens", 1.0, "Completion length (tokens)"))
LABELS = ("factor", "level", "reference", "test_set", "metric")
ALPHA = 1 - CONFIDENCE


def note(correction: str = DEFAULT_CORRECTION, family: dict | None = None, clustered: bool = False) -> str:
    """The table's header line: what decides, the family ({metric: tests}), what is only described; `clustered`:
    some rows' questions share images (their SEs and bootstrap cluster by image)."""
    size = "" if not family else " (" + ", ".join(f"{m}: {n} tests" for m, n in family.items()) + ")"
    by_image = ("; where questions share an image (the row's note gives the images), the question-level SEs are "
                "cluster-robust by image and the bootstrap resamples images") if clustered else ""
    return ("verdicts on the questions both arms answered: effect = level − reference; 95% CI and p: with n ≥ 2 seeds "
            "the Hartung-Knapp random-effects estimate over the seeds' paired effects and their question-level SEs "
            "(t on df = n − 1; never narrower than the question noise allows), with n = 1 seed the paired t-test over "
            "questions (evaluation noise only; run-to-run noise unmeasured); "
            f"{CORRECTION_TITLES[correction]}: adjusted within the family = this study's comparisons x test sets, "
            f"one family per metric{size}; "
            "resolved when the adjusted p < 0.05; detectable: the difference this test finds with 80% power at this "
            "design (noncentral t, the study's seed and question noise pooled over its comparisons); described only, "
            "deciding nothing: question CI (paired bootstrap over every seed's questions pooled) and McNemar p (exact, "
            f"pooled over seeds; accuracy, one run per arm and seed){by_image}")


NOTE = note()


@dataclass
class Comparison:
    """One comparison's per-question differences on one test set and metric: `labels` (LABELS), `by_seed`
    ({seed: (differences level - reference, level values, reference values)}; empty when refused), `binary`
    (0/1 outcomes of one run per arm and seed: McNemar applies), `refused` (why the arms cannot be paired),
    `clusters` ({seed: image cluster labels of its questions in by_seed's order}, only for the seeds whose questions
    share images; the other seeds' questions are each their own cluster)."""

    labels: dict
    by_seed: dict
    binary: bool = False
    refused: str = ""
    dropped: str = ""  # seeds left out because they pair fewer combinations than the fullest seed
    clusters: dict = dataclass_field(default_factory=dict)


def comparisons(runs: pd.DataFrame, factors: tuple[str, ...], outcomes: OutcomeReader = local_outcomes,
                reference: dict[str, str] = REFERENCE_LEVELS, lacking: set | None = None) -> Iterator[Comparison]:
    """Every (factor, level, test set, metric) whose paired runs all hold per-question outcomes; the runs that
    lack them are added to `lacking` (their comparisons are skipped)."""
    read = cache(outcomes)
    for factor in factors:
        ref, others, keyed = pairing_frame(runs, factor, factors, reference)
        if keyed is None:
            continue
        cells = keyed.groupby([*others, "seed", factor], sort=True, dropna=False)["run"].apply(list).unstack(factor)
        for level in sorted(set(cells.columns) - {ref}):
            pairs = cells[[level, ref]].dropna()
            if pairs.empty:
                continue
            all_runs = [r for cell in pairs.to_numpy().ravel() for r in cell]
            missing = [r for r in all_runs if not read(r)]
            if missing:
                if lacking is not None:
                    lacking.update(missing)
                continue
            complete, dropped = _complete_seeds(pairs)
            test_sets = set.intersection(*(set(read(r)) for r in all_runs))
            for test_set in sorted(test_sets, key=lambda s: (s != IN_DOMAIN, s)):
                for metric, field, scale, _ in METRICS:
                    if not all(_has(read(r)[test_set], field) for r in all_runs):
                        continue
                    labels = {"factor": factor, "level": level, "reference": ref, "test_set": test_set,
                              "metric": metric}
                    try:
                        by_seed, binary, clusters = _seed_differences(complete, read, test_set, field, scale,
                                                                      f"{factor}={level} and {factor}={ref} runs")
                    except UnpairedError as error:
                        log.warning("%s=%s vs %s on %s: %s", factor, level, ref, test_set, error)
                        yield Comparison(labels, {}, refused=str(error))
                        continue
                    yield Comparison(labels, by_seed, binary and field == "correct", dropped=dropped,
                                     clusters=clusters)


def _complete_seeds(pairs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The pairs of the seeds that pair as many combinations of the other factors as the fullest seed, and a note
    naming the seeds left out (a factorial seed still running has only some cells; its mean over those would
    estimate another average than the full seeds'). One-factor studies have one pair per seed: nothing is left."""
    seeds = pairs.index.get_level_values("seed")
    counts = pd.Series(1, index=seeds).groupby(level=0).size()
    full = counts[counts == counts.max()].index
    if len(full) == len(counts):
        return pairs, ""
    left = ", ".join(f"{s} ({counts[s]} of {counts.max()} combinations)" for s in counts.index if s not in full)
    return pairs[seeds.isin(full)], f"seeds left out, not every combination of the other factors paired: {left}"


def question_level_effects(runs: pd.DataFrame, factors: tuple[str, ...], outcomes: OutcomeReader = local_outcomes,
                           reference: dict[str, str] = REFERENCE_LEVELS,
                           correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    """A row per comparison (see note() for the columns), its p adjusted within the table (the study's family).
    Comparisons whose runs lack per-question outcomes are left out (attrs["without_outcomes"]: how many runs); arms
    scored on different questions get a row whose `note` names the mismatch and no statistics. attrs: correction,
    family (tests adjusted together), noise ({(test set, metric): detectable.Noise})."""
    lacking: set = set()
    found = list(comparisons(runs, factors, outcomes, reference, lacking))
    rows = [c.labels | ({"note": c.refused} if c.refused
                        else _statistics(c.by_seed, c.binary, c.dropped, c.clusters)) for c in found]
    frame = pd.DataFrame(rows, columns=[*LABELS, *_STAT_COLUMNS])
    pooled = {key: noise(*zip(*[(c.by_seed, c.clusters) for c in found if not c.refused
                                and (c.labels["test_set"], c.labels["metric"]) == key]))
              for key in {(c.labels["test_set"], c.labels["metric"]) for c in found if not c.refused}}
    # The family: the study's comparisons x test sets, one metric (accuracy and length answer different questions;
    # pooling them would let the secondary metrics dilute the primary one's verdicts).
    frame["p_adjusted"], frame["family"] = np.nan, 0
    for _, rows in frame.groupby("metric", sort=False):
        p_values = rows["p_value"].astype(float)
        frame.loc[rows.index, "p_adjusted"] = adjust(p_values, correction)
        frame.loc[rows.index, "family"] = family_size(p_values)
    frame["detectable"] = [_detectable(pooled.get((t, m)), n, q) for t, m, n, q in
                           zip(frame["test_set"], frame["metric"], frame["n"], frame["questions"], strict=True)]
    frame["verdict"] = [verdict(e, p, n, d, m, CORRECTION_TITLES[correction]) if pd.notna(p) else (x or "-")
                        for e, p, n, d, m, x in zip(frame["effect"], frame["p_adjusted"], frame["n"],
                                                    frame["detectable"], frame["metric"], frame["note"], strict=True)]
    frame = frame[[*LABELS, *_STAT_COLUMNS]]
    frame.attrs.update(without_outcomes=len(lacking), correction=correction, noise=pooled,
                       clustered=any(c.clusters for c in found if not c.refused),
                       family={m: int(n) for m, n in frame.groupby("metric", sort=False)["family"].max().items()})
    if lacking:
        log.warning("%d run(s) hold no per-question outcomes (predictions.jsonl): their comparisons have no "
                    "question-level tests, e.g. %s", len(lacking), sorted(lacking)[0])
    return frame


def _detectable(measured: Noise | None, seeds, questions) -> float:
    if measured is None or pd.isna(seeds) or pd.isna(questions):
        return float("nan")
    return minimum_detectable(measured, int(seeds), int(questions))


_STAT_COLUMNS = ["n", "df", "seeds", "questions", "effect", "low", "high", "p_value", "p_adjusted", "family",
                 "seed_sd", "question_se", "detectable", "verdict", "question_low", "question_high", "p_mcnemar",
                 "per_seed", "note"]


def _has(outcomes: dict, field: str) -> bool:
    return bool(outcomes) and all(row.get(field) is not None for row in outcomes.values())


def _values(runs: list[str], read: Callable, test_set: str, field: str, scale: float) -> dict:
    """Question key -> the field's value averaged over the runs of one cell (scaled to the tables' unit)."""
    maps = [{k: float(row[field]) * scale for k, row in read(r)[test_set].items()} for r in runs]
    for run, other in zip(runs[1:], maps[1:], strict=True):
        paired_values(maps[0], other, f"runs {runs[0]} and {run}")
    return {k: float(np.mean([m[k] for m in maps])) for k in maps[0]}


def _image_clusters(runs: list[str], read: Callable, test_set: str, keys: list[str]) -> np.ndarray | None:
    """Cluster labels of the questions `keys` by the image_key the runs' outcome rows carry (the first run holding
    one for a question), or None when no two of them share an image (one question per image, or no image keys:
    older records), so the unclustered statistics apply unchanged."""
    outcomes = [read(r)[test_set] for r in runs]
    images = [next((o[k]["image_key"] for o in outcomes if o[k].get("image_key") is not None), None) for k in keys]
    clusters = clusters_of(images)
    return clusters if len(np.unique(clusters)) < len(keys) else None


def _seed_differences(pairs: pd.DataFrame, read: Callable, test_set: str, field: str, scale: float,
                      what: str) -> tuple[dict, bool, dict]:
    """({seed: (per-question differences level - reference averaged over the seed's pairs, the first pair's level
    values, its reference values)}, whether every seed has one pair of single runs: then the values are 0/1
    outcomes McNemar can test, {seed: image cluster labels in the differences' order} for the seeds whose questions
    share images). Within a seed every arm must hold the same questions (UnpairedError); seeds may differ (the
    synthetic data is drawn from the seed)."""
    per_seed: dict = {}
    seed_runs: dict = {}
    for index, (level_runs, ref_runs) in zip(pairs.index, pairs.to_numpy(), strict=True):
        seed = index[-1] if isinstance(index, tuple) else index
        per_seed.setdefault(seed, []).append((_values(level_runs, read, test_set, field, scale),
                                              _values(ref_runs, read, test_set, field, scale),
                                              len(level_runs) == len(ref_runs) == 1))
        seed_runs.setdefault(seed, []).extend([*level_runs, *ref_runs])
    by_seed, clusters = {}, {}
    for seed, seed_pairs in per_seed.items():
        first = seed_pairs[0][0]
        for level_values, ref_values, _ in seed_pairs:
            paired_values(first, level_values, f"{what} at seed {seed}")
            paired_values(first, ref_values, f"{what} at seed {seed}")
        keys = sorted(first)
        array = lambda values: np.array([values[k] for k in keys])  # noqa: E731
        by_seed[seed] = (np.mean([array(a) - array(b) for a, b, _ in seed_pairs], axis=0),
                         array(seed_pairs[0][0]), array(seed_pairs[0][1]))
        images = _image_clusters(seed_runs[seed], read, test_set, keys)
        if images is not None:
            clusters[seed] = images
    binary = all(len(p) == 1 and p[0][2] for p in per_seed.values())
    return by_seed, binary, clusters


def _se(differences: np.ndarray, clusters: np.ndarray | None) -> float:
    """The SE of the mean difference: cluster-robust by image where questions share one, else the ordinary one."""
    return question_se(differences) if clusters is None else cluster_se(differences, clusters)


def _bootstrap(differences: np.ndarray, clusters: np.ndarray | None):
    """The descriptive interval: resampling images where questions share one, else questions."""
    return paired_bootstrap(differences) if clusters is None else cluster_bootstrap(differences, clusters)


def _pooled_clusters(differences: list[np.ndarray], clusters: list[np.ndarray | None]) -> np.ndarray | None:
    """Cluster labels of every seed's questions pooled (an image is a cluster within its seed, as each seed's
    question is a unit of the pooled bootstrap); None when no seed's questions share an image."""
    if all(c is None for c in clusters):
        return None
    labels, offset = [], 0
    for d, c in zip(differences, clusters, strict=True):
        own = np.arange(len(d)) if c is None else np.unique(c, return_inverse=True)[1]
        labels.append(own + offset)
        offset += int(own.max()) + 1 if len(own) else 0
    return np.concatenate(labels)


def _statistics(by_seed: dict, mcnemar: bool, dropped: str = "", clusters: dict | None = None) -> dict:
    """The deciding estimate (seed_level at 2+ seeds; the paired t over questions at one), and the descriptive
    question-level bootstrap and McNemar tests; `clusters` ({seed: image labels}, see Comparison) makes those seeds'
    SEs cluster-robust and the bootstrap resample their images."""
    seeds = sorted(by_seed)
    differences = [np.asarray(by_seed[s][0], float) for s in seeds]
    images = [(clusters or {}).get(s) for s in seeds]
    ses = np.array([_se(d, c) for d, c in zip(differences, images, strict=True)])
    pooled = _bootstrap(np.concatenate(differences), _pooled_clusters(differences, images))
    notes = [dropped] if dropped else []
    if any(c is not None for c in images):
        counts = [len(d) if c is None else len(np.unique(c)) for d, c in zip(differences, images, strict=True)]
        notes.append(f"questions share images: {int(round(np.mean(counts)))} images for "
                     f"{int(round(np.mean([len(d) for d in differences])))} questions (SEs cluster-robust, bootstrap "
                     "over images)")
    if len(seeds) > 1:
        decided = seed_level(np.array([d.mean() for d in differences]), ses)
        effect, low, high, p, df, seed_sd = (decided.effect, decided.low, decided.high, decided.p_value, decided.df,
                                             decided.tau)
        notes += [decided.note] if decided.note else []
    else:
        effect, low, high, p, df = _over_questions(differences[0], images[0])
        seed_sd = float("nan")
    per_seed = []
    for seed, d, c in zip(seeds, differences, images, strict=True):
        interval = pooled if len(seeds) == 1 else _bootstrap(d, c)
        text = f"{seed}: {interval.effect:+.2f} [{interval.low:.2f}, {interval.high:.2f}]"
        if mcnemar:
            text += f" p={mcnemar_exact(by_seed[seed][1] > 0, by_seed[seed][2] > 0).p_value:.3g}"
        per_seed.append(text)
    p_mcnemar = float("nan")
    if mcnemar:
        a = np.concatenate([by_seed[s][1] for s in seeds]) > 0
        b = np.concatenate([by_seed[s][2] for s in seeds]) > 0
        p_mcnemar = mcnemar_exact(a, b).p_value
    return {"n": len(seeds), "df": df, "seeds": ",".join(map(str, seeds)),
            "questions": int(round(np.mean([len(d) for d in differences]))), "effect": effect, "low": low,
            "high": high, "p_value": p, "seed_sd": seed_sd,
            "question_se": float(np.sqrt(np.mean(ses**2) / len(seeds))),
            "question_low": pooled.low, "question_high": pooled.high, "p_mcnemar": p_mcnemar,
            "per_seed": "; ".join(per_seed), "note": "; ".join(notes)}


def _over_questions(differences: np.ndarray,
                    clusters: np.ndarray | None = None) -> tuple[float, float, float, float, int]:
    """(mean, 95% low, high, p, df) of the paired t-test over one seed's per-question differences: evaluation noise
    only. With `clusters` (questions sharing images) the SE is cluster-robust by image and df = images - 1. A
    constant difference has no spread: its interval is the point and p is 1 (0) when it is (not) zero; differences
    that vary on a single image have no estimable SE (NaN interval and p)."""
    mean = float(differences.mean())
    m = len(differences) if clusters is None else len(np.unique(clusters))
    se = _se(differences, clusters)
    if se == 0:
        if m < 2 and np.any(differences != differences[0]):
            return mean, float("nan"), float("nan"), float("nan"), m - 1
        return mean, mean, mean, 1.0 if mean == 0 else 0.0, m - 1
    crit = stats.t.ppf(0.5 + CONFIDENCE / 2, m - 1)
    p = float(2 * stats.t.sf(abs(mean / se), m - 1))
    return mean, mean - crit * se, mean + crit * se, p, m - 1


def verdict(effect: float, p_adjusted: float, seeds: int, detectable: float = float("nan"),
            metric: str = "accuracy", adjusted: str = CORRECTION_TITLES[DEFAULT_CORRECTION]) -> str:
    """In words, from the adjusted p: "higher/lower: resolved at n = k seeds", "not resolved at n = k seeds
    (detectable: about X <unit>)", or, at one seed, that run-to-run noise is unmeasured (so nothing is resolved)
    and what evaluation noise alone says. Never "within noise" as if that were a finding."""
    direction = "higher" if effect > 0 else "lower"
    p_text = f"{adjusted} = {_p(p_adjusted)}"
    if seeds >= 2:
        if p_adjusted < ALPHA:
            return f"{direction}: resolved at n = {seeds} seeds ({p_text})"
        unit = UNITS.get(metric, "")
        size = "not estimable" if math.isnan(detectable) else f"about {detectable:.1f}" + (f" {unit}" if unit else "")
        return f"not resolved at n = {seeds} seeds (detectable: {size}; {p_text})"
    alone = f"{direction}, beyond evaluation noise" if p_adjusted < ALPHA else "not beyond evaluation noise either"
    return f"not resolved: one seed, run-to-run noise unmeasured ({alone}: {p_text})"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _interval(low: float, high: float) -> str:
    return "-" if math.isnan(low) else f"[{low:.2f}, {high:.2f}]"


def display(frame: pd.DataFrame, plus_minus: str = "±", escape=lambda s: s) -> pd.DataFrame:
    """The table as shown: labels, n (seeds) and df, the effect with its deciding 95% CI, p and the adjusted p, the
    verdict, then what is only described (the question bootstrap CI, McNemar p), or the note of a refused pairing.
    escape: applied to every text cell and title (LaTeX). plus_minus is unused (intervals are [low, high])."""
    titles = {m: t for m, _, _, t in METRICS}
    adjusted = CORRECTION_TITLES[frame.attrs.get("correction", DEFAULT_CORRECTION)]
    number = lambda v, f: "-" if pd.isna(v) else f(v)  # noqa: E731
    shown = pd.DataFrame({
        "factor": frame["factor"], "level": frame["level"], "reference": frame["reference"],
        "test set": frame["test_set"], "metric": frame["metric"].map(titles),
        "n": frame["n"].map(lambda n: number(n, lambda v: str(int(v)))),
        "df": frame["df"].map(lambda n: number(n, lambda v: str(int(v)))),
        "effect [95% CI]": [number(e, lambda v: f"{v:+.2f}") + ("" if pd.isna(lo) else f" {_interval(lo, hi)}")
                            for e, lo, hi in zip(frame["effect"], frame["low"], frame["high"], strict=True)],
        "p": frame["p_value"].map(lambda p: number(p, _p)),
        adjusted: frame["p_adjusted"].map(lambda p: number(p, _p)),
        "verdict": [v if isinstance(v, str) and v else (n or "-") for v, n in zip(frame["verdict"], frame["note"],
                                                                                  strict=True)],
        "question CI": [_interval(lo, hi) for lo, hi in zip(frame["question_low"], frame["question_high"], strict=True)],
        "McNemar p": frame["p_mcnemar"].map(lambda p: number(p, lambda v: f"{v:.3g}")),
        "note": frame["note"].fillna(""),
    })
    text = ["factor", "level", "reference", "test set", "metric", "verdict", "note"]
    shown[text] = shown[text].map(lambda v: escape(str(v)))
    return shown.rename(columns=escape)


def write_question_level(frame: pd.DataFrame, study: Study, out_dir: Path) -> list[Path]:
    """<study>_questions.csv/.md/.tex; nothing when no comparison had per-question outcomes."""
    if frame.empty:
        return []
    title = f"{study.title}: verdicts (paired, per test set and metric)"
    return write_formats(frame, display(frame), display(frame, r"$\pm$", latex_escape), len(LABELS), title,
                         out_dir / f"{study.stem}_questions", note(frame.attrs.get("correction", DEFAULT_CORRECTION),
                                                                     frame.attrs.get("family"),
                                                                     frame.attrs.get("clustered", False)))
