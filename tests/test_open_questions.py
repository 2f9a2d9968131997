"""Open (free-text) questions of VQA-RAD, PathVQA and SLAKE: dataset.questions=closed|open|all on each
layout, validation of open rows in both modes, the open prompt, DPO's rejected answer, evaluation metrics,
and a 1-step GRPO run through the CLI with dataset.questions=all."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.data.questions import gold_answer, is_open
from medvqa_rl.data.splits import to_trl_dataset
from medvqa_rl.data.validation import BadRowsError

from .conftest import compose_config
from .test_closed_vqa import _load, write_parquet_layout, write_slake

OPEN = "left lung"  # the open answer of tests/test_closed_vqa.py's QA, every fourth row


@pytest.mark.parametrize("dataset", ["vqa_rad", "path_vqa"])
def test_parquet_open_questions_only(dataset, tmp_path):
    train, test, skipped = _load(dataset, write_parquet_layout(tmp_path / dataset), "dataset.questions=open")
    assert (len(train), len(test)) == (2, 1)  # rows 4 and 8 of 8, row 4 of 4
    assert skipped == Counter({"train/closed_question": 6, "test/closed_question": 3})
    record = train[0]
    assert is_open(record) and record["options"] == [] and record["answer_label"] == ""
    assert record["answer_text"] == OPEN and gold_answer(record) == OPEN
    assert record["question_type"] == "open" and record["rationale"] == "" and record["id"].startswith(f"{dataset}-")
    assert round(record["image"].getpixel((0, 0))[0] / 40) == 3  # the fourth row's own image


@pytest.mark.parametrize("dataset", ["vqa_rad", "path_vqa"])
def test_parquet_all_questions(dataset, tmp_path):
    train, test, skipped = _load(dataset, write_parquet_layout(tmp_path / dataset), "dataset.questions=all")
    assert (len(train), len(test)) == (8, 4) and skipped == Counter()
    assert [r["question_type"] for r in train[:4]] == ["closed", "closed", "closed", "open"]
    assert [gold_answer(r) for r in train[:4]] == ["A", "B", "A", OPEN]
    # One TRL dataset mixes both: Arrow types `options` as a list of strings, the open rows' list empty.
    trl = to_trl_dataset(train)
    assert str(trl.features["options"].feature.dtype) == "string"
    assert [row["options"] for row in trl][:4] == [["yes", "no"]] * 3 + [[]]


def test_open_answer_keeps_its_text_stripped(tmp_path):
    def shout(split, rows):
        rows[3]["answer"] = "  Left Lung, upper lobe \n"

    train, _, _ = _load("vqa_rad", write_parquet_layout(tmp_path / "rad", edit=shout), "dataset.questions=open")
    assert train[0]["answer_text"] == "Left Lung, upper lobe"


@pytest.mark.parametrize("questions,sizes,skipped", [
    ("open", (1, 1), {"closed_question": 5, "not_english": 1}),
    ("all", (6, 6), {"not_english": 1}),
    ("closed", (5, 5), {"open_question": 1, "not_english": 1}),
])
def test_slake_question_modes(questions, sizes, skipped, tmp_path):
    train, test, counted = _load("slake", write_slake(tmp_path / "slake"), f"dataset.questions={questions}")
    assert (len(train), len(test)) == sizes
    assert counted == Counter({f"{split}/{reason}": n for split in ("train", "test") for reason, n in skipped.items()})
    opened = [r for r in train if is_open(r)]
    assert len(opened) == (questions != "closed")
    for record in opened:  # SLAKE's content_type stays the question type of an open question too
        assert (record["answer_text"], record["question_type"]) == (OPEN, "abnormality")


def _blank_answer(split, rows):
    if split == "train":
        rows[3]["answer"] = "  "


def _no_answer(split, rows):
    if split == "train":
        rows[3]["answer"] = None


@pytest.mark.parametrize("edit", [_blank_answer, _no_answer])
def test_open_row_with_empty_answer(edit, tmp_path):
    root = write_parquet_layout(tmp_path / "rad", edit=edit)
    with pytest.raises(BadRowsError, match="train-00000-of-00001.parquet:4: empty_answer"):
        _load("vqa_rad", root, "dataset.questions=open")
    train, _, skipped = _load("vqa_rad", root, "dataset.questions=all", "dataset.on_bad_row=skip")
    assert len(train) == 7 and skipped == Counter({"train/empty_answer": 1})
    # Closed mode does not load it (no yes/no answer), and counts it as an open question, as before.
    _, _, skipped = _load("vqa_rad", root)
    assert skipped["train/open_question"] == 2


def test_slake_empty_open_answer_names_the_json_item(tmp_path):
    def blank(splits):
        splits["train.json"][3]["answer"] = ""

    with pytest.raises(BadRowsError, match="train.json:4: empty_answer"):
        _load("slake", write_slake(tmp_path / "slake", edit=blank), "dataset.questions=open")


def test_validation_rejects_a_label_on_an_open_question():
    from medvqa_rl.data.validation import row_problem

    record = {"id": "x", "question": "Where?", "options": [], "answer_label": "A", "answer_text": OPEN}
    assert row_problem(record, set())[0] == "label_on_open_question"
    assert row_problem(record | {"answer_label": ""}, set()) is None
    assert row_problem(record | {"answer_label": ""}, {"x"})[0] == "duplicate_id"


@pytest.mark.parametrize("dataset", ["vqa_rad", "path_vqa", "slake"])
def test_unknown_questions_mode_is_a_config_error(dataset):
    assert compose_config([f"dataset={dataset}"]).dataset.questions == "closed"
    with pytest.raises(ConfigError, match=r"dataset\.questions must be one of \('closed', 'open', 'all'\)"):
        check_config(compose_config([f"dataset={dataset}", "dataset.questions=both"]))
