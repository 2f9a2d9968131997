"""Closed and open questions: which of them a dataset loads, and how to tell one from the other.

A closed question is multiple choice: its record has options and an answer label (a letter). An open
question has free text for an answer: `options` is [] and `answer_label` is "". The record schema is the
same for both, so one TRL dataset can mix them (Arrow needs one type per column: an empty list is a
list of strings). Telling them apart by `options` needs no extra column and works on prediction rows too.
"""

from __future__ import annotations

QUESTION_MODES = ("closed", "open", "all")  # dataset.questions of VQA-RAD, PathVQA, SLAKE


def is_open(record: dict) -> bool:
    """True for a free-text question (no options); works on records, reward columns and prediction rows."""
    return not record["options"]


def gold_answer(record: dict) -> str:
    """What the model should put in <answer>: the option letter, or the free-text answer of an open question."""
    return record["answer_text"] if is_open(record) else record["answer_label"]


def loads(record: dict, questions: str) -> bool:
    """Whether dataset.questions=<questions> loads this record."""
    if questions not in QUESTION_MODES:
        raise ValueError(f"dataset.questions must be one of {QUESTION_MODES}, got {questions!r}")
    return questions == "all" or (questions == "open") == is_open(record)


def left_out_reason(record: dict) -> str:
    """The data/skipped/<split>/<reason> under which a question the mode does not load is counted."""
    return "open_question" if is_open(record) else "closed_question"
