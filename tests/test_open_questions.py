"""Open (free-text) questions of VQA-RAD, PathVQA and SLAKE: dataset.questions=closed|open|all on each
layout, validation of open rows in both modes, the open prompt, DPO's rejected answer, evaluation metrics,
and a 1-step GRPO run through the CLI with dataset.questions=all."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.questions import gold_answer, is_open
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


def test_closed_prompt_is_unchanged_and_open_prompt_asks_for_words():
    from medvqa_rl.prompts import question_text, reference_completion

    # Byte for byte what the tiny models were trained on (their cache key and behaviour depend on it).
    assert question_text("Is there a fracture?", ["yes", "no"]) == (
        "Is there a fracture?\nA. yes\nB. no\nReason in <think></think>, then give the letter in <answer></answer>.")
    assert question_text("Where is the lesion?", []) == (
        "Where is the lesion?\nReason in <think></think>, then give the answer in a few words in <answer></answer>.")
    record = {"options": [], "answer_label": "", "answer_text": OPEN, "rationale": ""}
    assert reference_completion(record["rationale"], gold_answer(record)) == "<think></think><answer>left lung</answer>"


def _open_record(i: int, answer: str, question_type: str = "open") -> dict:
    return {"id": f"r{i}", "question": f"q{i}", "options": [], "answer_label": "", "answer_text": answer,
            "question_type": question_type, "rationale": ""}


def test_dpo_rejects_another_answer_of_the_same_split_and_type():
    from medvqa_rl.training.preferences import rejected_completions
    from medvqa_rl.rewards import answer_content
    from medvqa_rl.rewards.open_answer import exact_match

    closed = {"id": "c", "question": "q", "options": ["yes", "no"], "answer_label": "A", "answer_text": "yes",
              "question_type": "organ", "rationale": ""}
    split = [_open_record(0, "Left lung"), _open_record(1, "left lung."), _open_record(2, "liver"),
             _open_record(3, "heart"), _open_record(4, "spleen", "size"), closed]
    rejected = rejected_completions(split, seed=0)
    answers = [answer_content(text) for text in rejected]
    for record, answer in zip(split[:4], answers):
        assert answer in {"liver", "heart", "Left lung", "left lung."} and not exact_match(answer, record["answer_text"])
    assert answers[4] in {"Left lung", "liver", "heart", "yes"}  # alone in its type: any other answer of the split
    assert answers[5] == "B"  # a closed record: the wrong option's letter, as before
    assert rejected == rejected_completions(list(reversed(split)), seed=0)[::-1]  # per (seed, id), not order
    assert len({tuple(rejected_completions(split, seed=s)[:4]) for s in range(6)}) > 1  # the seed draws


def test_dpo_without_any_other_answer_is_a_clear_error():
    from medvqa_rl.training.preferences import rejected_completions

    with pytest.raises(ValueError, match="another answer"):
        rejected_completions([_open_record(0, "liver"), _open_record(1, "The liver")], seed=0)


def test_sft_and_dpo_targets_of_an_open_record(tmp_path):
    from medvqa_rl.training.dpo import to_dpo_dataset
    from medvqa_rl.training.sft import to_sft_dataset

    train, _, _ = _load("vqa_rad", write_parquet_layout(tmp_path / "rad"), "dataset.questions=all")
    sft, dpo = to_sft_dataset(train), to_dpo_dataset(train, seed=0)
    assert sft[3]["completion"][0]["content"] == "<think></think><answer>left lung</answer>"
    assert dpo[3]["chosen"][0]["content"] == "<think></think><answer>left lung</answer>"
    assert dpo[3]["rejected"][0]["content"] in {"<think></think><answer>yes</answer>",
                                                 "<think></think><answer>no</answer>"}  # the only other answers
    assert "give the answer in a few words" in sft[3]["prompt"][0]["content"]
    assert dpo[0]["chosen"][0]["content"] == "<think></think><answer>A</answer>"


def _prediction(question_type, correct, f1=None):
    options = [] if f1 is not None else ["yes", "no"]
    row = {"question_type": question_type, "options": options, "correct": correct, "well_formed": True,
           "completion_tokens": 4}
    return row | ({"f1": f1} if f1 is not None else {})


def test_summarize_mixed_open_and_closed():
    from medvqa_rl.evaluation import summarize

    rows = [_prediction("closed", True), _prediction("closed", False), _prediction("closed", False),
            _prediction("open", True, 1.0), _prediction("open", False, 0.4)]
    metrics = summarize(rows)
    assert metrics["accuracy"] == pytest.approx(40.0)  # every question
    assert metrics["closed/accuracy"] == pytest.approx(100 / 3)
    assert metrics["open/exact_match"] == pytest.approx(50.0) and metrics["open/f1"] == pytest.approx(70.0)
    assert metrics["accuracy/open"] == pytest.approx(50.0)
    assert "open/f1" not in summarize(rows[:3]) and "closed/accuracy" not in summarize(rows[3:])


def test_evaluate_scores_open_rows_by_exact_match_and_f1(tmp_path, monkeypatch):
    import importlib

    evaluation = importlib.import_module("medvqa_rl.evaluation.evaluate")  # the module, not the function it exports

    _, test, _ = _load("vqa_rad", write_parquet_layout(tmp_path / "rad", n_test=8), "dataset.questions=all")
    texts = ["<think>r</think><answer>A</answer>", "<think>r</think><answer>A</answer>", "garbage",
             "<think>r</think><answer>The left lung.</answer>", "<think>r</think><answer>(A)</answer>",
             "<think>r</think><answer>no</answer>", "<think>r</think><answer>yes</answer>",
             "<think>r</think><answer>right lung</answer>"]
    monkeypatch.setattr(evaluation, "generate_greedy", lambda model, processor, records, *args: [(t, 5) for t in texts])
    monkeypatch.setattr(evaluation, "answer_examples", lambda *args: [])
    monkeypatch.setattr(evaluation, "target_nll", lambda *args: (0.0, 1))
    metrics, rows = evaluation.evaluate(None, None, test, batch_size=4, max_new_tokens=8)
    assert [r["correct"] for r in rows] == [True, False, False, True, True, True, True, False]
    assert [r.get("f1") for r in rows] == [None, None, None, 1.0, None, None, None, 0.5]
    assert rows[3]["parsed_answer"] == "The left lung." and rows[3]["answer_text"] == OPEN
    assert rows[7]["parsed_answer"] == "right lung" and rows[4]["parsed_answer"] == "A"
    assert metrics["accuracy"] == 62.5 and metrics["closed/accuracy"] == pytest.approx(400 / 6)
    assert metrics["open/exact_match"] == 50.0 and metrics["open/f1"] == 75.0


def test_perplexity_of_open_reference_answers(tiny_cache, tmp_path):
    import math


    from medvqa_rl.evaluation import reference_perplexity
    from medvqa_rl.evaluation.perplexity import reference_examples
    from medvqa_rl.models.loading import load_init

    from .conftest import SMALL_TINY

    cfg = compose_config(SMALL_TINY + [f"cache_dir={tiny_cache}"])
    model, processor, _ = load_init(cfg)
    _, test, _ = _load("vqa_rad", write_parquet_layout(tmp_path / "rad"), "dataset.questions=all")
    assert reference_examples(processor, test)[3].target.startswith("<think></think><answer>left lung</answer>")
    value = reference_perplexity(model, processor, test, batch_size=3)
    assert math.isfinite(value) and value > 1.0


def test_one_grpo_step_on_open_and_closed_questions_through_the_cli(tiny_cache, tmp_path):
    from .conftest import ONE_STEP_RUN, SMALL_TINY, cli

    root = write_parquet_layout(tmp_path / "rad")  # train: 6 closed + 2 open; test: 3 closed + 1 open
    run_dir = tmp_path / "run"
    result = cli([*SMALL_TINY, *ONE_STEP_RUN, f"cache_dir={tiny_cache}", "dataset=vqa_rad", f"dataset.path={root}",
                  "dataset.questions=all", "reward=accuracy_f1", "eval.similarity_model=null",
                  f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    opened = [r for r in rows if not r["options"]]
    assert len(rows) == 4 and len(opened) == 1 and all(("f1" in r) == (r in opened) for r in rows)
    assert record["test/accuracy"] == 100.0 * sum(r["correct"] for r in rows) / 4
    assert record["test/open/exact_match"] == 100.0 * opened[0]["correct"]
    assert record["test/open/f1"] == 100.0 * opened[0]["f1"]
    assert record["test/closed/accuracy"] == 100.0 * sum(r["correct"] for r in rows if r["options"]) / 3
    for key in ("accuracy", "closed/accuracy", "open/exact_match", "open/f1", "perplexity"):
        assert isinstance(record[f"init/test/{key}"], float), key
    assert record["train/steps"] == 1 and not any(k.startswith("data/skipped/") for k in record)
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert any("rewards/answer_f1/mean" in step for step in history)  # TRL called the F1 reward
