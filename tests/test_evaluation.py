"""The evaluation every method shares: metrics on crafted predictions, perplexity against the model's
own loss, reasoning similarity, and the full evaluate() on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation import ReasoningSimilarity, answer_perplexity, evaluate, reference_perplexity, summarize
from medvqa_rl.judges import RuleJudge
from medvqa_rl.models.loading import load_init
from medvqa_rl.prompts import assistant_turn, prompt_messages, reference_completion


def _row(qtype, correct, well_formed, tokens, **extra):
    return {"question_type": qtype, "options": ["a", "b", "c", "d"], "correct": correct, "well_formed": well_formed,
            "completion_tokens": tokens, **extra}


def test_summarize_crafted_predictions():
    rows = [
        _row("size", True, True, 10, similarity=1.0, judge_verdict=1.0),
        _row("size", False, True, 12, similarity=0.5, judge_verdict=0.0),
        _row("count", True, False, 5, similarity=0.0, judge_verdict=1.0),
        _row("count", False, False, 1, similarity=-0.5, judge_verdict=0.0),
    ]
    assert summarize(rows) == {
        "accuracy": 50.0, "format_rate": 50.0, "completion_tokens": 7.0, "similarity": 0.25, "judge_score": 50.0,
        "accuracy/count": 50.0, "accuracy/size": 50.0, "closed/accuracy": 50.0,  # no open questions: no open/*
    }
    plain = summarize([{k: v for k, v in r.items() if k not in ("similarity", "judge_verdict")} for r in rows])
    assert "similarity" not in plain and "judge_score" not in plain


@pytest.fixture(scope="module")
def instruct_model(tiny_cache):
    from .conftest import SMALL_TINY, compose_config

    cfg = compose_config(SMALL_TINY + [f"cache_dir={tiny_cache}"])
    model, processor, _ = load_init(cfg)
    return model, processor


def _direct_nll(model, processor, record, target: str | None = None, context: str = "") -> tuple[float, int]:
    """Sum NLL and token count of ``target`` (default: the reference turn) after the prompt and ``context``,
    from the model's own loss, built independently of the evaluator: the chat template tokenises the prompt,
    the tokenizer the rest, labels mask all but the target."""
    from trl.data_utils import prepare_multimodal_messages

    prompt = prepare_multimodal_messages(prompt_messages(record["question"], record["options"]), [record["image"]])
    if target is None:
        target = assistant_turn(processor, reference_completion(record["rationale"], record["answer_label"]))
    prompt_inputs = processor.apply_chat_template([prompt], tokenize=True, add_generation_prompt=True,
                                                  return_dict=True, return_tensors="pt")
    context_ids = processor.tokenizer(context, add_special_tokens=False, return_tensors="pt").input_ids.long()
    target_ids = processor.tokenizer(target, add_special_tokens=False, return_tensors="pt").input_ids
    prompt_inputs["input_ids"] = torch.cat([prompt_inputs["input_ids"], context_ids], dim=1)
    prompt_inputs["attention_mask"] = torch.ones_like(prompt_inputs["input_ids"])
    if "mm_token_type_ids" in prompt_inputs:
        prompt_inputs["mm_token_type_ids"] = torch.cat(
            [prompt_inputs["mm_token_type_ids"], torch.zeros_like(context_ids)], dim=1)
    inputs = dict(prompt_inputs)
    inputs["input_ids"] = torch.cat([prompt_inputs["input_ids"], target_ids], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if "mm_token_type_ids" in inputs:  # the target is text: type 0
        inputs["mm_token_type_ids"] = torch.cat(
            [prompt_inputs["mm_token_type_ids"], torch.zeros_like(target_ids)], dim=1)
    labels = inputs["input_ids"].clone()
    labels[:, : prompt_inputs["input_ids"].shape[1]] = -100
    with torch.no_grad():
        loss = model(**inputs, labels=labels).loss.item()
    n = target_ids.shape[1]
    return loss * n, n


def test_perplexity_matches_the_models_own_loss(instruct_model):
    model, processor = instruct_model
    records = make_split("test", 5, seed=0)
    nll, tokens = zip(*(_direct_nll(model, processor, r) for r in records))
    assert reference_perplexity(model, processor, records[:1], batch_size=1) == pytest.approx(
        math.exp(nll[0] / tokens[0]), rel=1e-4)
    # Batched with padding: the token-weighted perplexity over all records.
    assert reference_perplexity(model, processor, records, batch_size=3) == pytest.approx(
        math.exp(sum(nll) / sum(tokens)), rel=1e-4)


def test_answer_perplexity_is_the_gold_answer_after_the_models_own_reasoning(instruct_model):
    """The same quantity for every method: the gold <answer> block and end of turn, teacher-forced after the
    prompt and the model's own <think> block (an empty one where it gave none), token-weighted over records."""
    model, processor = instruct_model
    records = make_split("test", 4, seed=1)
    reasonings = ["the lesion count is 2", None, "in the image, the modality is ct", "x"]
    pairs = [_direct_nll(model, processor, r, target=assistant_turn(processor, f"<answer>{r['answer_label']}</answer>"),
                         context=f"<think>{reasoning or ''}</think>")
             for r, reasoning in zip(records, reasonings)]
    nll, tokens = zip(*pairs)
    assert answer_perplexity(model, processor, records, reasonings, batch_size=3) == pytest.approx(
        math.exp(sum(nll) / sum(tokens)), rel=1e-4)
    # Conditioning matters: the answer after a reasoning that names the gold option's finding vs another's.
    record = records[0]
    right, wrong = (f"the {record['question_type']} is {record['options'][i]}"
                    for i in ("ABCD".index(record["answer_label"]), ("ABCD".index(record["answer_label"]) + 2) % 4))
    assert answer_perplexity(model, processor, [record], [right], 1) != answer_perplexity(model, processor, [record],
                                                                                          [wrong], 1)


def test_generation_stops_at_the_chats_end_of_turn_as_well_as_eos(instruct_model):
    """A base checkpoint's generation config may name only <|endoftext|> as eos: the answer still ends at the
    chat's end of turn (<|im_end|>) instead of running on into the budget."""
    import copy

    from medvqa_rl.evaluation import generate_greedy
    from medvqa_rl.models.generation import end_of_turn_ids

    model, processor = instruct_model
    records = make_split("test", 4, seed=2)
    normal = generate_greedy(model, processor, records, batch_size=4, max_new_tokens=40)
    (end_of_turn,) = end_of_turn_ids(processor)
    saved = copy.deepcopy(model.generation_config)
    try:
        model.generation_config.eos_token_id = [t for t in range(3) if t != end_of_turn][0]
        assert end_of_turn not in [model.generation_config.eos_token_id]
        assert generate_greedy(model, processor, records, batch_size=4, max_new_tokens=40) == normal
    finally:
        model.generation_config = saved
    assert all(n < 40 for _, n in normal)


@pytest.fixture(scope="module")
def similarity():
    return ReasoningSimilarity()  # the packaged all-MiniLM-L6-v2: no download


def test_similarity_of_reasoning_to_the_reference(similarity):
    reference = "the lesions are at left upper"
    same, close, unrelated, missing = similarity(
        [reference, "the lesion is in the left upper region", "the weather is sunny today", None], [reference] * 4)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert 1.0 > close > unrelated
    assert missing == 0.0


def test_evaluate_yields_every_metric_consistent_with_its_rows(instruct_model, similarity):
    model, processor = instruct_model
    records = make_split("test", 12, seed=0)
    metrics, rows = evaluate(model, processor, records, batch_size=5, max_new_tokens=20, similarity=similarity,
                             judge=RuleJudge())
    for key in ("accuracy", "format_rate", "completion_tokens", "perplexity", "similarity", "judge_score"):
        assert key in metrics, key
    assert metrics["accuracy"] == 100.0 * sum(r["correct"] for r in rows) / len(rows)
    assert metrics["judge_score"] == 100.0 * sum(r["judge_verdict"] for r in rows) / len(rows)
    assert {r["id"] for r in rows} == {r["id"] for r in records}
    for row in rows:
        assert {"id", "question", "options", "completion", "parsed_answer", "correct"} <= row.keys()
        if row["reasoning"] is None:
            assert row["similarity"] == 0.0 and row["judge_verdict"] == 0.0
    assert metrics["perplexity"] > 1.0


def test_similarity_compares_with_the_gold_answer_text_where_there_is_no_rationale(instruct_model, similarity):
    """Datasets without a reference rationale (PMC-VQA, VQA-RAD, ...) still get a similarity: of the reasoning
    to the gold answer's text; each row says which reference it was scored against."""
    model, processor = instruct_model
    records = make_split("test", 4, seed=0)
    records[2:] = [{**r, "rationale": ""} for r in records[2:]]
    metrics, rows = evaluate(model, processor, records, batch_size=4, max_new_tokens=20, similarity=similarity)
    assert [r["similarity_reference"] for r in rows] == ["rationale", "rationale", "answer_text", "answer_text"]
    assert "similarity" in metrics and all("similarity" in r for r in rows)
    reasoning, gold = rows[3]["reasoning"], records[3]["answer_text"]
    if reasoning:
        assert rows[3]["similarity"] == pytest.approx(similarity([reasoning], [gold])[0], abs=1e-5)
