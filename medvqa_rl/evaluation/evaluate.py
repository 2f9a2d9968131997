"""One evaluation for every method: greedy answers, then accuracy, format, length, perplexity,
reasoning similarity and judge score, and a prediction row per question."""

from __future__ import annotations

from collections import defaultdict

from medvqa_rl.data.splits import findings_json
from medvqa_rl.evaluation.generation import generate_greedy
from medvqa_rl.evaluation.perplexity import reference_perplexity
from medvqa_rl.rewards import answer_letter, is_well_formed, reasoning_text
from medvqa_rl.rewards.semantic import judge_items, judged_scores


def evaluate(model, processor, records: list[dict], *, batch_size: int, max_new_tokens: int, similarity=None,
             judge=None, progress: bool = False) -> tuple[dict, list[dict]]:
    """Metrics and one prediction row per record.

    Keys: accuracy, format_rate, judge_score (percent 0-100), accuracy/<question_type> (percent),
    completion_tokens (mean tokens), perplexity (of the reference turn), similarity (mean cosine in
    [-1, 1]). similarity / judge_score are left out when no similarity model / judge is given, and
    similarity also when the dataset has no reference rationales (PMC-VQA).
    """
    completions = generate_greedy(model, processor, records, batch_size, max_new_tokens, progress)
    predictions = []
    for record, (text, n_tokens) in zip(records, completions, strict=True):
        parsed = answer_letter(text, record["options"])
        predictions.append({
            "id": record["id"],
            "question_type": record["question_type"],
            "question": record["question"],
            "options": list(record["options"]),
            "answer_label": record["answer_label"],
            "completion": text,
            "reasoning": reasoning_text(text),
            "parsed_answer": parsed,
            "correct": parsed == record["answer_label"],
            "well_formed": is_well_formed(text),
            "completion_tokens": n_tokens,
        })
    if similarity is not None and any(r["rationale"] for r in records):  # no reference rationale, no similarity
        scores = similarity([p["reasoning"] for p in predictions], [r["rationale"] for r in records])
        for row, score in zip(predictions, scores, strict=True):
            row["similarity"] = score
    if judge is not None:
        for row, verdict in zip(predictions, judge_verdicts(judge, predictions, records), strict=True):
            row["judge_verdict"] = verdict
    metrics = summarize(predictions)
    metrics["perplexity"] = reference_perplexity(model, processor, records, batch_size)
    return metrics, predictions


def judge_verdicts(judge, predictions: list[dict], records: list[dict]) -> list[float]:
    """The judge's verdict on each prediction's reasoning; 0 where there is none (as in the reward)."""
    findings = [findings_json(r) for r in records]
    items = judge_items([p["completion"] for p in predictions], [r["question"] for r in records],
                        [r["answer_text"] for r in records], findings)
    return judged_scores(judge, items)


def summarize(predictions: list[dict]) -> dict:
    """Aggregates prediction rows into flat metrics (percent for rates, mean tokens, mean cosine)."""
    n = len(predictions)
    metrics = {
        "accuracy": 100.0 * sum(p["correct"] for p in predictions) / n,
        "format_rate": 100.0 * sum(p["well_formed"] for p in predictions) / n,
        "completion_tokens": sum(p["completion_tokens"] for p in predictions) / n,
    }
    if all("similarity" in p for p in predictions):
        metrics["similarity"] = sum(p["similarity"] for p in predictions) / n
    if all("judge_verdict" in p for p in predictions):
        metrics["judge_score"] = 100.0 * sum(p["judge_verdict"] for p in predictions) / n
    by_type = defaultdict(list)
    for p in predictions:
        by_type[p["question_type"]].append(p["correct"])
    for question_type, correct in sorted(by_type.items()):
        metrics[f"accuracy/{question_type}"] = 100.0 * sum(correct) / len(correct)
    return metrics
