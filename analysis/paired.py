"""Paired effects: each factor level against the factor's reference level (studies.REFERENCE_LEVELS),
seed by seed.

The arms of a sweep share seeds, and one seed means one data subset and one init, so the difference
level - reference within a seed is free of the seed-to-seed variation that widens the per-arm
intervals. For each factor F of a study and each level L of F other than the reference R:

1. runs that share (the other factors' levels, F's level, seed) are averaged (tables.seed_means);
2. a pair is a cell at L and the cell at R with the same seed and the same levels of the other
   factors; its difference L - R is taken per metric;
3. a seed's effect is the mean of its pairs' differences (in the full factorial: over the combinations
   of the other factors, the main effect at that seed; in a one-factor study a seed has one pair);
4. the row reports the mean over seeds, the 95% t-interval half-width over seeds (n - 1 df; NaN for
   n < 2) and n = the seeds that have at least one pair. A seed present at one level only is no pair.

So n counts seeds, never runs or other-factor combinations (`pairs` in the CSV says how many cells
were matched). Step 1 covers ad-hoc multiruns, whose one-factor studies pool the other factors: there
several runs at one level can share a seed; they count once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.studies import REFERENCE_LEVELS, Study
from analysis.tables import (invalid_note, judge_names, judge_note, metric_columns, metric_stats, seed_list, seed_means,
                             write_table)

LABELS = ("factor", "level", "reference")
PAIRED_NOTE = ("paired by seed: level − reference, mean ± 95% t-interval over the seeds' differences (n = paired seeds, "
               "df = n − 1; the seeds' spread only, descriptive: the verdicts, whose intervals also count each seed's "
               "question noise, are in the verdict table)")
FACTORIAL_NOTE = ("; pairs differ only in the row's factor (other factors equal, same seed), and each seed's "
                  "pairs are averaged over the other factors' combinations first")
_MISSING = "<none>"  # stands in for an unrecorded factor level, so that such runs still pair with each other


def paired_effects(runs: pd.DataFrame, factors: tuple[str, ...],
                   reference: dict[str, str] = REFERENCE_LEVELS) -> pd.DataFrame:
    """A row per (factor, level other than the reference): factor, level, reference, n (paired seeds),
    pairs (matched cells), seeds, then <metric>_mean and <metric>_ci95 of level - reference, for the metrics of every
    test set (the in-domain split's, then each extra set's: tables.metric_columns).

    Factors whose reference level no run has get no row; they are listed in the frame's
    attrs["missing_reference"] as (factor, reference) and said in the written table (missing_reference_note).
    A level with no paired seed has n = 0. eval_judge: which judge scored the judge score, level / reference.
    """
    metrics = [c for c, _, _ in metric_columns(runs.columns)]  # every test set's (tables.metric_columns)
    records, missing = [], []
    for factor in factors:
        ref, others, keyed = pairing_frame(runs, factor, factors, reference)
        if keyed is None:
            if runs[factor].notna().any():
                missing.append((factor, ref))
            continue
        cells = seed_means(keyed, [*others, factor]).set_index([*others, "seed", factor]).unstack(factor)
        for level in sorted(set(cells["runs"].columns) - {ref}):
            matched = cells["runs"][[level, ref]].notna().all(axis=1)
            differences = pd.DataFrame({m: cells[m][level] - cells[m][ref] for m in metrics})[matched]
            per_seed = differences.groupby(level="seed").mean()
            records.append({"factor": factor, "level": level, "reference": ref, "n": len(per_seed),
                            "pairs": int(matched.sum()), "seeds": seed_list(per_seed.index)} | metric_stats(per_seed)
                           | judges(runs[runs[factor] == level], runs[runs[factor] == ref]))
    effects = pd.DataFrame(records)
    effects.attrs["missing_reference"] = missing
    effects.attrs["invalid"] = invalid_note(runs)
    return effects


def pairing_frame(runs: pd.DataFrame, factor: str, factors: tuple[str, ...],
                  reference: dict[str, str] = REFERENCE_LEVELS) -> tuple[str, list[str], pd.DataFrame | None]:
    """(the factor's reference level, the other factors, the runs that record a level of `factor` with the other
    factors' unrecorded levels filled in, so such runs still pair with each other; None when no run is at the
    reference level). Shared by the seed-level (here) and the question-level (question_level.py) pairing."""
    ref, others = reference[factor], [f for f in factors if f != factor]
    if not (runs[factor] == ref).any():
        return ref, others, None
    return ref, others, runs.dropna(subset=[factor]).fillna({f: _MISSING for f in others})


def judges(level: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """eval_judge of a paired row: the level's judges / the reference's (tables.judge_names)."""
    if "eval_judge" not in level:
        return {}
    return {"eval_judge": f"{judge_names(level['eval_judge'])} / {judge_names(reference['eval_judge'])}"}


def missing_reference_note(effects: pd.DataFrame) -> str | None:
    """What the paired table leaves out because a factor's reference level has no finished run, or None."""
    missing = effects.attrs.get("missing_reference", [])
    if not missing:
        return None
    return "No paired effects for " + "; ".join(
        f"{factor}: its reference level {ref} has no finished run here" for factor, ref in missing) + "."


def write_paired(runs: pd.DataFrame, study: Study, out_dir: Path) -> list[Path]:
    """<study>_paired.csv/.md/.tex beside the per-arm table; nothing when no factor has its reference."""
    return write_effects(paired_effects(runs, study.rows), study, out_dir)


def paired_note(study: Study, effects: pd.DataFrame | None = None) -> str:
    note = PAIRED_NOTE + (FACTORIAL_NOTE if len(study.rows) > 1 else "")
    if effects is not None:
        note += judge_note(effects) + effects.attrs.get("invalid", "")
        missing = missing_reference_note(effects)
        note += f". {missing}" if missing else ""
    return note


def write_effects(effects: pd.DataFrame, study: Study, out_dir: Path) -> list[Path]:
    """paired_effects' frame as <study>_paired.csv/.md/.tex; when it is empty because a reference level is
    missing, <study>_paired.md says so; nothing when the study has no other level."""
    stem = out_dir / f"{study.stem}_paired"
    if effects.empty:
        missing = missing_reference_note(effects)
        if missing is None:
            return []
        stem.with_suffix(".md").write_text(f"### {study.title}: paired effects\n\n{missing}\n")
        return [stem.with_suffix(".md")]
    return write_table(effects, LABELS, f"{study.title}: paired effects", stem, paired_note(study, effects))
