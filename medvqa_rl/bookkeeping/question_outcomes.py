"""Per-question outcomes of a run, by test set: what the question-level paired tests (analysis/question_level.py)
compare. Read from a local run record (predictions.jsonl, or the slim records' predictions.jsonl.gz; an extra
set's under test_sets/<set>/) or from a W&B run's `test/outcomes` Table (every question of every set, logged by
medvqa_rl/tracking.py; the `test/predictions` Table shows only a sample).

An outcome row: the question's id, a digest of what was asked (question, options, gold answer: ids are positions,
so the same id of another data seed or test_size is another question), and the scores the tables average (correct,
judge_verdict, similarity, completion_tokens, ...). Outcomes are keyed by `<id>#<digest>`, so pairing two arms by
key pairs the same questions or names the ones that differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from medvqa_rl.bookkeeping.run_record import read_jsonl
from medvqa_rl.data.test_sets import FOLDER

IN_DOMAIN = "in-domain"  # the runs' own test split, among the test sets (the tables' column group too)

PREDICTIONS = "predictions.jsonl"
# The per-question scores kept in slim records and in the W&B outcomes Table (the tables' metrics per question).
OUTCOME_FIELDS = ("correct", "well_formed", "completion_tokens", "judge_verdict", "similarity", "f1")
# Kept in slim records too: a question's per-sample outcomes (eval.samples: medvqa_rl/evaluation/sampled.py; lists,
# not W&B Table cells) and the image it asks about (question-level intervals cluster by it; a column of the Table).
ROW_FIELDS = ("samples_correct", "samples_answers", "image_key")
TABLE_FIELDS = (*OUTCOME_FIELDS, "image_key")  # the W&B outcomes Table's columns after test_set, id, question_key
WANDB_KEY = "test/outcomes"  # the W&B Table of every question's outcome: columns test_set, id, question_key, ...
ASKED = ("question", "options", "answer_label", "answer_text")  # what identifies a question beyond its id

Outcomes = dict[str, dict[str, dict]]  # test set (IN_DOMAIN or the set's name) -> pairing_key -> outcome row
OutcomeReader = Callable[[str], Outcomes]  # a run (the run frame's `run`) -> its outcomes ({} when it has none)


def question_key(prediction: dict) -> str:
    """A digest of what a prediction row was asked (ASKED), 12 hex digits."""
    asked = json.dumps([prediction.get(k) for k in ASKED], ensure_ascii=False)
    return hashlib.sha256(asked.encode()).hexdigest()[:12]


def outcome_row(prediction: dict) -> dict:
    """The fields of a prediction row the paired tests use (a slim record keeps just these)."""
    key = prediction.get("question_key") or question_key(prediction)
    return {"id": prediction["id"], "question_key": key,
            **{k: prediction[k] for k in (*OUTCOME_FIELDS, *ROW_FIELDS) if k in prediction}}


def pairing_key(row: dict) -> str:
    return f"{row['id']}#{row['question_key']}"


def predictions_file(folder: Path) -> Path | None:
    """predictions.jsonl in folder, else predictions.jsonl.gz (a slim record), else None."""
    for path in (folder / PREDICTIONS, folder / f"{PREDICTIONS}.gz"):
        if path.exists():
            return path
    return None


def set_folders(run_dir: Path) -> dict[str, Path]:
    """Test set -> the folder of its predictions in a local run record (in-domain: the run dir itself)."""
    folders = {IN_DOMAIN: run_dir}
    extra = run_dir / FOLDER
    if extra.is_dir():
        folders |= {p.name: p for p in sorted(extra.iterdir()) if p.is_dir()}
    return folders


def local_outcomes(run: str) -> Outcomes:
    """Outcomes of every test set whose predictions a local run record holds."""
    return {test_set: {pairing_key(row): row for row in map(outcome_row, rows)}
            for test_set, rows in local_predictions(run).items()}


def outcome_table_rows(predictions: dict) -> tuple[list[str], list[list]]:
    """(columns, rows) of the W&B outcomes Table from {test set (None or IN_DOMAIN: in-domain): prediction rows}."""
    columns = ["test_set", "id", "question_key", *TABLE_FIELDS]
    table = [[name or IN_DOMAIN, str(row["id"]), outcome["question_key"], *(outcome.get(k) for k in TABLE_FIELDS)]
             for name, rows in predictions.items() for row in rows for outcome in [outcome_row(row)]]
    return columns, table


def local_predictions(run: str | Path) -> dict[str, list[dict]]:
    """Every test set's prediction rows of a local run record (outcome rows in a slim record)."""
    found = {}
    for test_set, folder in set_folders(Path(run)).items():
        path = predictions_file(folder)
        if path is not None:
            found[test_set] = read_jsonl(path)
    return found


def outcomes_from_table(table: dict) -> Outcomes:
    """Outcomes from a W&B Table's JSON ({"columns": [...], "data": [[...], ...]}), as outcome_table_rows wrote it."""
    columns, found = table["columns"], {}
    for values in table["data"]:
        row = dict(zip(columns, values, strict=True))
        kept = {"id": str(row["id"]), "question_key": row["question_key"]} | {
            k: row[k] for k in TABLE_FIELDS if row.get(k) is not None}  # image_key: absent from older Tables
        found.setdefault(row["test_set"], {})[pairing_key(kept)] = kept
    return found
