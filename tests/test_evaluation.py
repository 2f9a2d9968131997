"""The evaluation every method shares: metrics on crafted predictions, perplexity against the model's
own loss, reasoning similarity, and the full evaluate() on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation import ReasoningSimilarity, evaluate, reference_perplexity, summarize
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


def _direct_nll(model, processor, record) -> tuple[float, int]:
    """Sum NLL and token count of the reference turn from the model's own loss, built independently of the
    evaluator: the chat template tokenises prompt and full conversation, labels mask the prompt."""
    from trl.data_utils import prepare_multimodal_messages

    prompt = prepare_multimodal_messages(prompt_messages(record["question"], record["options"]), [record["image"]])
    target = assistant_turn(processor, reference_completion(record["rationale"], record["answer_label"]))
    prompt_inputs = processor.apply_chat_template([prompt], tokenize=True, add_generation_prompt=True,
                                                  return_dict=True, return_tensors="pt")
    target_ids = processor.tokenizer(target, add_special_tokens=False, return_tensors="pt").input_ids
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
