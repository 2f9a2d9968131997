"""The analysis of a set of runs: each study's tables and plots (files), and one static page, index.html,
that shows them all with the run list and the environment. Plain HTML and CSS (templates/index.html.j2),
images and records by relative path: the folder can be copied or served as it is."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from analysis.paired import LABELS, missing_reference_note, paired_effects, paired_note, write_effects
from analysis.factorial import display as factorial_display
from analysis.factorial import factorial_effects, write_factorial
from analysis.factorial import note as factorial_note
from analysis.plots import BAND_NOTE, CURVES, plot_curves, plot_forest, plot_interactions
from analysis.pass_at_k import write_sharpening
from analysis.summary import comparison_sentences, factorial_sentences
from analysis.question_level import LABELS as QUESTION_LABELS
from analysis.multiplicity import DEFAULT as DEFAULT_CORRECTION
from analysis.question_level import note as questions_note
from analysis.question_level import display as questions_display
from analysis.question_level import question_level_effects, write_question_level
from analysis.records import EXCLUDED_COLUMNS, Records
from analysis.studies import STUDIES, Study, study_versions
from analysis.tables import arm_note, display_frame, summarize, write_table
from medvqa_rl.bookkeeping.question_outcomes import OutcomeReader, local_outcomes

RUN_LIST_FACTORS = ("model_init", "reward", "length_reward", "bias", "method", "family", "dataset", "judge")
# What produced the runs, listed in the environment (values that differ are counted): one code for a table.
PROVENANCE_SHOWN = ("provenance/code", "provenance/code/git_commit", "provenance/code/git_dirty", "provenance/versions")
ENVIRONMENT_KEYS = (("train/steps", "training steps"), ("train/examples", "training examples"),
                    ("train/processes", "processes"), ("family", "model family"), ("dataset", "dataset"),
                    ("judge", "judge"))


@dataclass
class StudyResult:
    """A filled study: its runs, per-arm summary (tables.summarize), paired effects (paired.paired_effects;
    may be empty), question-level paired tests (question_level.question_level_effects; empty without
    per-question outcomes) and the plots written for it."""

    study: Study
    runs: pd.DataFrame
    arms: pd.DataFrame
    paired: pd.DataFrame
    questions: pd.DataFrame = field(default_factory=pd.DataFrame)
    plots: list[Path] = field(default_factory=list)
    factorial: pd.DataFrame = field(default_factory=pd.DataFrame)  # factorial.factorial_effects (factorial only)
    summary: list[str] = field(default_factory=list)  # the answer first: summary.comparison_sentences (+ factorial)
    figures: list[Path] = field(default_factory=list)  # the forest plot, the factorial's interaction plots

    @property
    def wandb_group(self) -> str | None:
        """The W&B group of the study's runs when they share one."""
        groups = set(self.runs["wandb_group"].dropna()) if "wandb_group" in self.runs else set()
        return groups.pop() if len(groups) == 1 else None


def write_studies(runs: pd.DataFrame, history: pd.DataFrame, out: Path, outcomes: OutcomeReader = local_outcomes,
                  correction: str = DEFAULT_CORRECTION) -> tuple[list[StudyResult], list[Path]]:
    """runs.csv (a row per finished run), then each study's tables (per arm, then paired by seed against
    the reference levels, then the question-level tests of the same pairs, from each run's per-question
    `outcomes`) and plots that the runs can fill."""
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    results, written = [], [out / "runs.csv"]
    for study, chosen in (pair for s in STUDIES for pair in study_versions(runs, s)):
        result = StudyResult(study, chosen, summarize(chosen, study.rows), paired_effects(chosen, study.rows),
                             question_level_effects(chosen, study.rows, outcomes, correction=correction))
        written += write_table(result.arms, study.rows, study.title, out / study.stem, arm_note(result.arms))
        written += write_effects(result.paired, study, out)
        written += write_question_level(result.questions, study, out)
        result.summary = comparison_sentences(result.questions)
        if len(study.rows) > 1:  # the factorial, analysed as one model
            result.factorial = factorial_effects(chosen, study.rows, outcomes, correction=correction)
            written += write_factorial(result.factorial, study.stem, study.title, out)
            result.summary += factorial_sentences(result.factorial)
            result.figures += [plot_interactions(cells, study.rows, f"{study.title}: {test_set}",
                                                 out / "plots" / f"{study.stem}_interactions_{test_set}.png")
                               for test_set, cells in result.factorial.attrs.get("cell_means", {}).items()]
        forest = plot_forest(result.questions, study.title, out / "plots" / f"{study.stem}_forest.png")
        result.figures = [forest, *result.figures] if forest else result.figures
        written += result.figures
        if result.summary:
            (out / f"{study.stem}_summary.md").write_text(f"### {study.title}: verdicts in words\n\n"
                                                          + "".join(f"- {s}\n" for s in result.summary))
            written.append(out / f"{study.stem}_summary.md")
        result.plots = plot_curves(chosen, history, study.rows, study.title, out / "plots", study.stem)
        written += result.plots
        # eval.samples: pass@k curves (init dashed, trained solid) and the sharpening summary, beside the figures
        sharpened = write_sharpening(chosen, study.rows, study.title, study.stem, out)
        result.figures += [p for p in sharpened if p.suffix == ".png"]
        written += sharpened
        results.append(result)
    return results, written


def _html_table(frame: pd.DataFrame, labels: int) -> str:
    """pandas' HTML table; the first `labels` columns are labels (left-aligned), the rest numbers. Grouped columns
    (tables.display_frame: a test set's) get a header row naming their group."""
    return frame.to_html(index=False, border=0, na_rep="–", classes=["data", f"labels-{labels}"])


def _link(record, out: Path) -> str | None:
    """A relative link from index.html to a local record, or the URL of a W&B run."""
    if record is None or pd.isna(record):
        return None
    record = str(record)
    if "://" in record:
        return record
    return Path(os.path.relpath(Path(record).resolve(), out.resolve())).as_posix()


def run_list(records: Records, out: Path) -> pd.DataFrame:
    """Every run, finished or not: run, sweep, wandb_group, seed, the factors, status, test/accuracy,
    detail, record (the file the run's row comes from: metrics.json, failure.json, ...; None when it left
    none) and link (to the record, relative to `out`)."""
    finished = records.runs.assign(status="finished", detail="")
    if "reused_from" in finished:  # a study's shared arm, trained once (medvqa_rl/reuse/shared_arms.py)
        finished["detail"] = [f"the record of {_grid_point(twin)} (same config), copied" if isinstance(twin, str)
                              else "" for twin in finished["reused_from"]]
    if not finished.empty:
        finished["record"] = [str(Path(r) / "metrics.json") if (Path(r) / "metrics.json").exists() else None
                              for r in finished["run"]]
    frame = pd.concat([finished.reindex(columns=EXCLUDED_COLUMNS), records.excluded.reindex(columns=EXCLUDED_COLUMNS)],
                      ignore_index=True)
    frame["link"] = [_link(r, out) for r in frame["record"]]
    return frame.sort_values(["sweep", "run"], na_position="last", kind="stable").reset_index(drop=True)


def _grid_point(run_dir: str) -> str:
    """`<sweep folder>/<grid point>`: where a run lies within its sweep.root."""
    path = Path(run_dir)
    return f"{path.parent.name}/{path.name}"


def _short_names(paths: list[str]) -> list[str]:
    """Local run paths (absolute, or relative as --runs gave them) relative to their common folder; W&B run names
    (no folder) as they are."""
    local = [p for p in paths if os.path.isabs(p) or os.sep in p]
    if not local or len({os.path.isabs(p) for p in local}) > 1:
        return paths
    root = os.path.commonpath(local)
    root = os.path.dirname(root) if root in local else root
    return [os.path.relpath(p, root) if p in local else p for p in paths]


def run_groups(runs: pd.DataFrame) -> list[dict]:
    """The run list by sweep: its title, the factor levels every run of it shares (`shared`), the factors
    that vary (`factors`, the columns) and its rows (`name`: the run's path within the sweep's folder)."""
    groups = []
    for sweep, frame in runs.groupby(runs["sweep"].fillna(""), sort=True):
        factors = [f for f in RUN_LIST_FACTORS if f in frame]
        varying = [f for f in factors if frame[f].nunique(dropna=False) > 1]
        shared = [f"{f}={frame[f].iloc[0]}" for f in factors if f not in varying and pd.notna(frame[f].iloc[0])]
        wandb_groups = sorted(frame["wandb_group"].dropna().unique())
        rows = _rows(frame.assign(name=_short_names([str(r) for r in frame["run"]])))
        groups.append({"sweep": sweep or None, "wandb_groups": ", ".join(wandb_groups), "shared": ", ".join(shared),
                       "factors": varying, "statuses": _by_count(frame["status"].value_counts()), "runs": rows})
    return groups


def environment(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(what, values) of the finished runs: package versions (version/* keys), seeds, budget, processes.
    Values that differ between runs are listed with their run counts; nothing without a finished run."""
    if runs.empty:
        return []
    rows = [("seeds", ", ".join(map(str, sorted(runs["seed"].dropna().unique())))),
            ("finished runs", str(len(runs)))]
    for key, name in ENVIRONMENT_KEYS:
        if key in runs and runs[key].notna().any():
            rows.append((name, _values(runs[key])))
    rows += [(key.removeprefix("version/"), _values(runs[key])) for key in sorted(runs.columns)
             if key.startswith("version/")]
    rows += [(key.replace("provenance/", "").replace("/", " "), _values(runs[key])) for key in PROVENANCE_SHOWN
             if key in runs and runs[key].notna().any()]
    return rows


def _values(column: pd.Series) -> str:
    counts = column.dropna().map(lambda v: f"{v:g}" if isinstance(v, float) else str(v)).value_counts()
    if len(counts) <= 1:
        return counts.index[0] if len(counts) else "–"
    return "; ".join(f"{value} ({n} runs)" for value, n in counts.sort_index().items())


def _study_view(result: StudyResult, excluded: pd.DataFrame, out: Path) -> dict:
    study = result.study
    mine = excluded["sweep"] == study.name
    if study.version is not None:
        mine &= excluded["sweep_version"] == study.version
    left_out = excluded[mine]["status"].value_counts()
    curves = dict(CURVES)
    return {
        "name": study.stem, "title": study.title, "factors": ", ".join(study.rows),
        "runs": len(result.runs), "seeds": ", ".join(map(str, sorted(result.runs["seed"].unique()))),
        "left_out": ", ".join(f"{n} {status}" for status, n in _by_count(left_out)),
        "arms": _html_table(display_frame(result.arms, study.rows, "±", grouped=True), len(study.rows)),
        "arms_note": arm_note(result.arms),
        "paired": (_html_table(display_frame(result.paired, LABELS, "±", grouped=True), len(LABELS))
                   if not result.paired.empty else None),
        "paired_note": paired_note(study, result.paired),
        "missing_reference": missing_reference_note(result.paired),
        "questions": (_html_table(questions_display(result.questions), len(QUESTION_LABELS))
                      if not result.questions.empty else None),
        "questions_note": questions_note(result.questions.attrs.get("correction", DEFAULT_CORRECTION),
                                         result.questions.attrs.get("family"),
                                         result.questions.attrs.get("clustered", False)),
        "without_outcomes": result.questions.attrs.get("without_outcomes", 0),
        "summary": result.summary,
        "figures": [{"src": _link(p, out), "alt": p.stem} for p in result.figures],
        "factorial": (_html_table(factorial_display(result.factorial), 4) if not result.factorial.empty else None),
        "factorial_note": factorial_note(result.factorial) if not result.factorial.empty else "",
        "plots": [{"src": _link(p, out), "alt": curves.get(_curve_of(p), p.stem)}
                  for p in result.plots],
    }


def _by_count(counts: pd.Series) -> list[tuple[str, int]]:
    """(status, count), the most frequent first, ties by name."""
    return sorted(((str(k), int(n)) for k, n in counts.items()), key=lambda item: (-item[1], item[0]))


def _curve_of(plot: Path) -> str:
    return next((column for column, _ in CURVES if plot.stem.endswith(column)), "")


def _rows(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows as dicts, missing values None (the template tests `is none`)."""
    return [{k: None if pd.api.types.is_scalar(v) and pd.isna(v) else v for k, v in row.items()}
            for row in frame.to_dict("records")]


def write_index(out: Path, results: list[StudyResult], records: Records, sources: list[str]) -> Path:
    """out/index.html: every filled study (tables, curves), the run list and the environment."""
    runs = run_list(records, out)
    statuses = runs["status"].value_counts()
    template = Environment(loader=PackageLoader("analysis", "templates"),
                           autoescape=select_autoescape(["html", "j2"])).get_template("index.html.j2")
    page = template.render(
        generated=time.strftime("%Y-%m-%d %H:%M"), sources=sources,
        studies=[_study_view(r, records.excluded, out) for r in results],
        missing=[s.name for s in STUDIES if s.name not in {r.study.name for r in results}],
        band_note=BAND_NOTE,
        statuses=_by_count(statuses),
        finished=int(statuses.get("finished", 0)), total=len(runs),
        run_groups=run_groups(runs), environment=environment(records.runs),
    )
    path = out / "index.html"
    path.write_text(page)
    return path
