"""Issue 39's evaluation protocol: sampled evaluation (pass@k, maj@k), blind and circular test sets.

Fast tier: the estimators against hand-computed values, the record transforms, the bad inputs (each naming its key),
and evaluate() on hand-built "models" (a function of the prompt's record standing in for generation): one that never
looks at the image scores the same blind and not, one that always answers A has circular accuracy 0.
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter

import pytest
from PIL import Image

import medvqa_rl  # noqa: F401  (registers the config resolvers)
from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.data.protocol_variants import VariantError, apply_variant, blind_record, image_key, rotated_record
from medvqa_rl.data.synthetic import make_split
from medvqa_rl.data.test_sets import load_run_data
import medvqa_rl.evaluation.evaluate  # noqa: F401  (the module, not the function the package exports)
from medvqa_rl.evaluation.sampled import ks, majority_correct, pass_at_k, sampled_metrics
from medvqa_rl.bookkeeping.question_outcomes import outcome_row
from tests.conftest import compose_config

evaluate_module = sys.modules["medvqa_rl.evaluation.evaluate"]


# ---------------------------------------------------------------------------------------------------- pass@k --

@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (4, 1, 1, 0.25),           # k = 1: c / n
    (4, 1, 2, 0.5),            # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (5, 2, 3, 0.9),            # 1 - C(3,3)/C(5,3) = 1 - 1/10
    (8, 2, 4, 1 - 15 / 70),    # 1 - C(6,4)/C(8,4)
    (8, 0, 8, 0.0),            # nothing right: never
    (8, 5, 4, 1.0),            # fewer than k wrong: any k samples hold a right one
])
def test_pass_at_k_matches_hand_computed_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_is_the_chance_that_k_of_the_samples_hold_a_right_one():
    samples = [True, False, False, True, False, False]
    for k in range(1, 7):
        subsets = list(itertools.combinations(samples, k))
        assert pass_at_k(6, 2, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_pass_at_k_refuses_k_above_the_samples():
    with pytest.raises(ValueError, match="k = 5"):
        pass_at_k(4, 1, 5)


def test_reported_k_double_up_to_the_samples():
    assert ks(1) == [1]
    assert ks(8) == [1, 2, 4, 8]
    assert ks(6) == [1, 2, 4, 6]


# ---------------------------------------------------------------------------------------------------- maj@k --

def test_majority_ties_count_as_wrong():
    assert majority_correct(["A", "B"], [True, False], 2) is False          # one vote each: a tie
    assert majority_correct(["A", "B", "A"], [True, False, True], 3) is True
    assert majority_correct(["B", "B", "A"], [False, False, True], 3) is False
    assert majority_correct(["A", "B", "B", "A"], [True, False, False, True], 4) is False  # 2-2


def test_majority_reads_the_first_k_samples_and_no_answer_never_votes():
    answers, correct = ["A", "B", "B"], [True, False, False]
    assert majority_correct(answers, correct, 1) is True
    assert majority_correct(answers, correct, 3) is False
    assert majority_correct([None, None, "A"], [False, False, True], 3) is True   # the one answer given wins
    assert majority_correct([None, None], [False, False], 2) is False             # no answer at all


def test_sampled_metrics_average_the_questions():
    rows = [{"samples_correct": [True, False, False, False], "samples_answers": ["A", "B", "B", "C"],
             "samples_well_formed": 4},
            {"samples_correct": [True, True, False, False], "samples_answers": ["C", "C", "A", "A"],
             "samples_well_formed": 2}]
    metrics = sampled_metrics(rows)
    assert metrics["pass@1"] == pytest.approx(100 * (0.25 + 0.5) / 2)
    assert metrics["pass@4"] == pytest.approx(100.0)
    assert metrics["pass@2"] == pytest.approx(100 * ((1 - 3 / 6) + (1 - 1 / 6)) / 2)
    assert metrics["maj@1"] == pytest.approx(100.0)   # both first samples right
    assert metrics["maj@4"] == pytest.approx(0.0)     # B wins the first; C-A tie in the second
    assert metrics["sampled/format_rate"] == pytest.approx(75.0)
    assert sampled_metrics([{"correct": True}]) == {}


# --------------------------------------------------------------------------------------------- transforms --

def _record(options=("w", "x", "y", "z"), label="C", **extra):
    return {"id": "q1", "question": "Which?", "options": list(options), "answer_label": label,
            "answer_text": options[ord(label) - 65] if options else "yes", "question_type": "t", "rationale": "",
            "image": Image.new("RGB", (8, 6), (200, 10, 10)), **extra}


def test_rotation_moves_the_options_and_the_gold_label_with_them():
    record = _record()
    assert rotated_record(record, 0)["options"] == ["w", "x", "y", "z"]
    assert rotated_record(record, 0)["id"] == "q1"
    one = rotated_record(record, 1)
    assert one["options"] == ["x", "y", "z", "w"] and one["answer_label"] == "B" and one["id"] == "q1@r1"
    three = rotated_record(record, 3)
    assert three["options"] == ["z", "w", "x", "y"] and three["answer_label"] == "D"
    for r in range(4):  # the gold option's text never changes, only its letter
        rotated = rotated_record(record, r)
        assert rotated["options"][ord(rotated["answer_label"]) - 65] == "y" == rotated["answer_text"]
        assert rotated["circular_of"] == "q1" and rotated["rotation"] == r


def test_circular_set_asks_closed_questions_once_per_rotation_and_open_ones_once():
    closed, yes_no = _record(), {**_record(("yes", "no"), "A"), "id": "q2"}
    opened = {**_record((), ""), "id": "q3", "options": [], "answer_text": "a lesion"}
    rows = apply_variant([closed, yes_no, opened], "circular", "eval.test_sets.circular.variant")
    assert [r["id"] for r in rows] == ["q1", "q1@r1", "q1@r2", "q1@r3", "q2", "q2@r1", "q3"]
    assert rows[5]["options"] == ["no", "yes"] and rows[5]["answer_label"] == "B"
    assert rows[6]["options"] == [] and rows[6]["answer_text"] == "a lesion"


def test_blind_keeps_the_question_and_withholds_the_image():
    record = _record()
    blind = blind_record(record)
    assert blind["image"].size == record["image"].size and blind["image"].getextrema() == ((0, 0),) * 3
    assert {k: v for k, v in blind.items() if k not in ("image", "image_key")} == \
        {k: v for k, v in record.items() if k != "image"}
    assert blind["image_key"] == image_key(record["image"])  # clusters by the original image, not the blank one


def test_circular_on_open_questions_only_is_refused_naming_the_key():
    opened = {**_record((), ""), "options": [], "answer_text": "a lesion"}
    with pytest.raises(VariantError, match=r"eval\.test_sets\.circular\.variant=circular.*open questions only"):
        apply_variant([opened], "circular", "eval.test_sets.circular.variant")


def test_blind_on_records_without_images_is_refused_naming_the_key():
    with pytest.raises(VariantError, match=r"eval\.test_sets\.blind\.variant=blind.*no image"):
        apply_variant([_record(image=None)], "blind", "eval.test_sets.blind.variant")


# ------------------------------------------------------------------------------------------ config and data --

@pytest.mark.parametrize(("overrides", "key"), [
    (["eval.samples=0"], "eval.samples"),
    (["eval.samples=-2"], "eval.samples"),
    (["eval.samples=4", "eval.pass_k=[1,8]"], "eval.pass_k"),
    (["eval.samples=4", "eval.sampling.temperature=0"], "eval.sampling.temperature"),
    (["eval.samples=4", "eval.sampling.top_p=0"], "eval.sampling.top_p"),
    (["test_sets=protocol", "dataset=vqa_rad", "dataset.questions=open"], "eval.test_sets.circular.variant"),
    (["+dataset@eval.test_sets.x=synthetic", "+eval.test_sets.x.variant=mirror"], "eval.test_sets.x.variant"),
    (["+dataset@eval.test_sets.x=synthetic", "+eval.test_sets.x.variant=blind", "+eval.test_sets.x.images=false"],
     "eval.test_sets.x.variant"),
    (["+dataset.variant=blind"], "dataset.variant"),
])
def test_bad_protocol_settings_fail_before_loading_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(compose_config(overrides))


def test_the_default_run_is_unchanged():
    cfg = compose_config()
    assert cfg.eval.samples is None
    assert list(cfg.eval.test_sets) == ["synthetic_ood"]
    check_config(compose_config(["eval.samples=8"]))  # on: accepted


def test_protocol_adds_blind_and_circular_of_the_runs_own_split_for_any_dataset():
    cfg = compose_config(["test_sets=protocol", "dataset.test_size=30"])
    assert list(cfg.eval.test_sets) == ["synthetic_ood", "blind", "circular"]
    assert cfg.eval.test_sets.blind.test_size == 30 and cfg.eval.test_sets.blind.variant == "blind"
    assert cfg.eval.test_sets.circular.variant == "circular" and cfg.eval.test_sets.circular.name == "synthetic"
    real = compose_config(["test_sets=protocol", "dataset=slake"])
    assert list(real.eval.test_sets) == ["blind", "circular"] and real.eval.test_sets.blind.name == "slake"


def test_protocol_sets_load_the_runs_questions(tmp_path):
    cfg = compose_config(["test_sets=protocol", "dataset.test_size=5", "eval.test_sets.synthetic_ood.test_size=2",
                          f"cache_dir={tmp_path}"])
    _, sets = load_run_data(cfg, False, Counter())
    by_name = {s.name: s.records for s in sets}
    plain = by_name[None]
    assert [r["id"] for r in by_name["blind"]] == [r["id"] for r in plain]
    assert all(r["image"].getextrema() == ((0, 0),) * 3 for r in by_name["blind"])
    assert len(by_name["circular"]) == 4 * len(plain)


# --------------------------------------------------------------------------------------- hand-built models --

def _completion(letter: str) -> str:
    return f"<think>looking</think><answer>{letter}</answer>"


def ignores_the_image(record: dict) -> str:
    """Answers from the question and options alone (a prior): the same whatever the pixels."""
    return _completion("ABCD"[len(record["question"]) % len(record["options"])])


def reads_the_image(record: dict) -> str:
    """Answers A on a dark image, B otherwise: blind changes its answers."""
    mean = sum(record["image"].convert("L").getdata()) / (record["image"].size[0] * record["image"].size[1])
    return _completion("A" if mean < 30 else "B")


def always_a(record: dict) -> str:
    return _completion("A")


@pytest.fixture
def hand_built(monkeypatch):
    """evaluate() with generation replaced by the 'model' (a function of the record): no checkpoint, no perplexity."""
    def generate(model, processor, records, *args, **kwargs):
        return [(model(r), 4) for r in records]

    monkeypatch.setattr(evaluate_module, "generate_greedy", generate)
    monkeypatch.setattr(evaluate_module, "answer_examples", lambda *a, **k: [])
    monkeypatch.setattr(evaluate_module, "target_nll", lambda *a, **k: (0.0, 1))

    def run(model, records):
        return evaluate_module.evaluate(model, None, records, batch_size=4, max_new_tokens=8)
    return run


@pytest.fixture(scope="module")
def questions():
    return make_split("test", 40, seed=3, option_order="shuffled")


def test_a_model_that_ignores_the_image_scores_the_same_blind(hand_built, questions):
    seen, _ = hand_built(ignores_the_image, questions)
    blind, _ = hand_built(ignores_the_image, apply_variant(questions, "blind", "k"))
    assert blind["accuracy"] == seen["accuracy"] and blind["closed/accuracy"] == seen["closed/accuracy"]
    looks, _ = hand_built(reads_the_image, questions)
    looks_blind, _ = hand_built(reads_the_image, apply_variant(questions, "blind", "k"))
    assert looks["accuracy"] != looks_blind["accuracy"]  # the check can tell one that looks


def test_a_model_that_always_answers_a_has_circular_accuracy_zero(hand_built, questions):
    metrics, rows = hand_built(always_a, apply_variant(questions, "circular", "k"))
    gold_a = 100 * sum(q["answer_label"] == "A" for q in questions) / len(questions)
    assert metrics["accuracy"] == 0.0                          # no question right in every rotation
    assert gold_a > 0 and metrics["plain_accuracy"] == pytest.approx(gold_a)  # right wherever the gold sits at A
    assert metrics["rotation_accuracy"] == pytest.approx(25.0)     # one rotation of four
    assert metrics["follows_position"] == 100.0
    assert [r["id"] for r in rows] == [q["id"] for q in questions]  # one row per question, pairable with in-domain
    assert rows[0]["rotations_answers"] == ["A"] * 4


def test_sampled_outcomes_reach_the_prediction_rows_and_the_slim_records(hand_built, questions, monkeypatch):
    def samples(model, processor, records, batch_size, max_new_tokens, n, sampling, progress, reasoning):
        return [[_completion(r["answer_label"]), _completion("A"), _completion("B"), "no tags"][:n] for r in records]

    monkeypatch.setattr(evaluate_module, "generate_samples", samples)
    metrics, rows = evaluate_module.evaluate(always_a, None, questions[:8], batch_size=4, max_new_tokens=8, samples=4,
                                             sampling={"temperature": 1.0, "top_p": 1.0})
    assert metrics["pass@4"] == 100.0 and metrics["sampled/n"] == 4
    assert metrics["sampled/format_rate"] == 75.0
    assert metrics["images"] == 8
    slim = outcome_row(rows[0])
    assert slim["samples_correct"][0] is True and len(slim["samples_answers"]) == 4 and slim["image_key"]
