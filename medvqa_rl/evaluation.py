"""Batched greedy evaluation on held-out records: accuracy, format rate, completion length, predictions."""

from __future__ import annotations

from collections import defaultdict

import torch
from trl.data_utils import prepare_multimodal_messages

from medvqa_rl.prompts import prompt_messages
from medvqa_rl.rewards import answer_letter, is_well_formed


def generate_greedy(model, processor, records: list[dict], batch_size: int, max_new_tokens: int) -> list[tuple[str, int]]:
    """Greedy completions for ``records``, batch by batch with left padding: [(text, n_tokens)]."""
    tokenizer = processor.tokenizer
    outputs = []
    model.eval()
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        conversations = [
            prepare_multimodal_messages(prompt_messages(r["question"], r["options"]), [r["image"]]) for r in batch
        ]
        inputs = processor.apply_chat_template(
            conversations,
            tokenize=True,
            add_generation_prompt=True,
            return_dict=True,
            return_tensors="pt",
            padding=True,
            padding_side="left",
        ).to(model.device)
        with torch.no_grad():
            generated = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        stop_ids = set(_as_list(model.generation_config.eos_token_id)) | {tokenizer.pad_token_id}
        for row in new_tokens.tolist():
            kept = _until_stop(row, stop_ids)
            outputs.append((tokenizer.decode(kept, skip_special_tokens=True), len(kept)))
    return outputs


def evaluate(model, processor, records: list[dict], batch_size: int, max_new_tokens: int) -> tuple[dict, list[dict]]:
    """Metrics (percentages 0-100, mean tokens) and one prediction row per record.

    Keys: accuracy, format_rate, completion_tokens, accuracy/<question_type>.
    """
    predictions = []
    for record, (text, n_tokens) in zip(records, generate_greedy(model, processor, records, batch_size, max_new_tokens)):
        parsed = answer_letter(text, record["options"])
        predictions.append(
            {
                "id": record["id"],
                "question_type": record["question_type"],
                "question": record["question"],
                "options": list(record["options"]),
                "answer_label": record["answer_label"],
                "completion": text,
                "parsed_answer": parsed,
                "correct": parsed == record["answer_label"],
                "well_formed": is_well_formed(text),
                "completion_tokens": n_tokens,
            }
        )
    return summarize(predictions), predictions


def summarize(predictions: list[dict]) -> dict:
    """Aggregates prediction rows into flat metrics (percent for rates)."""
    n = len(predictions)
    metrics = {
        "accuracy": 100.0 * sum(p["correct"] for p in predictions) / n,
        "format_rate": 100.0 * sum(p["well_formed"] for p in predictions) / n,
        "completion_tokens": sum(p["completion_tokens"] for p in predictions) / n,
    }
    by_type = defaultdict(list)
    for p in predictions:
        by_type[p["question_type"]].append(p["correct"])
    for question_type, correct in sorted(by_type.items()):
        metrics[f"accuracy/{question_type}"] = 100.0 * sum(correct) / len(correct)
    return metrics


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _until_stop(token_ids: list[int], stop_ids: set[int]) -> list[int]:
    for i, token in enumerate(token_ids):
        if token in stop_ids:
            return token_ids[:i]
    return token_ids
