"""One evaluation for every method: answers decoded as eval.generation says (greedy), then accuracy (open
questions also exact match and token F1), format, length, perplexity, reasoning similarity and judge score,
and a prediction row per question."""

from __future__ import annotations

from collections import defaultdict

from medvqa_rl.questions import is_open
from medvqa_rl.reasoning_formats import DEFAULT
from medvqa_rl.data.protocol_variants import record_image_key
from medvqa_rl.data.splits import findings_json
from medvqa_rl.distributed import gather_shards, process_state, shard_bounds
from medvqa_rl.models.generation import generate_greedy, stop_token_ids
from medvqa_rl.evaluation.circular import circular_metrics, fold_rotations, is_circular
from medvqa_rl.evaluation.perplexity import answer_examples, perplexity, target_nll
from medvqa_rl.evaluation.sampled import generate_samples, sample_fields, sampled_metrics
from medvqa_rl.rewards import answer_f1, is_correct, is_well_formed, parsed_answer, well_formed_reasoning
from medvqa_rl.rewards.semantic import judge_items, judged_scores


def evaluate(model, processor, records: list[dict], *, batch_size: int, max_new_tokens: int, similarity=None,
             judge=None, progress: bool = False, generation=None,
             engine=None, reasoning: str = DEFAULT, samples: int | None = None,
             sampling=None, pass_k=None) -> tuple[dict, list[dict]] | tuple[None, None]:
    """Metrics and one prediction row per record, on the main process; (None, None) on the others.

    generation: the decoder's settings (eval.generation, GenerationConfig fields; default generation.GREEDY);
    nothing of the checkpoint's generation_config but its token ids is used (medvqa_rl/decoding.py).
    engine: None generates with `model.generate` (eval.backend=hf); a vllm_generation.VLLMEvaluator on the same
    weights generates with vLLM (eval.backend=vllm: same prompts, stop tokens and decoder). Everything else, the
    perplexity included, uses `model`. reasoning: the reasoning format (medvqa_rl/reasoning_formats.py) the prompts
    ask for and every score reads; without reasoning (none) pass no similarity or judge.
    samples: eval.samples (None: off): that many completions per question besides the greedy one, drawn with
    `sampling` (eval.sampling), scored into pass@k / maj@k at pass_k (eval.pass_k; None: 1, 2, 4, ..., samples;
    medvqa_rl/evaluation/sampled.py; hf backend only).

    Keys: see summarize(); plus perplexity (of the gold answer after the model's own reasoning:
    perplexity.py). A prediction is `correct` when its letter is the label (closed question) or its answer
    text equals the reference after SQuAD normalisation (open question: no options; such rows also carry
    `f1`, token F1 in [0, 1]).

    Under several processes every process generates (and computes the perplexity terms of) its contiguous
    share of the records; the main process gathers them in order and scores the whole set once (judge,
    similarity). Every process must call it.
    """
    start, stop = shard_bounds(len(records))
    share = records[start:stop]
    if engine is None:
        generated = generate_greedy(model, processor, share, batch_size, max_new_tokens, progress, generation,
                                    reasoning)
    else:
        generated = engine.generate(processor, share, max_new_tokens, stop_token_ids(model, processor), generation,
                                    progress)
    reasonings = [well_formed_reasoning(text, reasoning) for text, _ in generated]
    nll = target_nll(model, processor, answer_examples(processor, share, reasonings, reasoning), batch_size)
    shards = gather_shards([(generated, nll)])
    if samples:  # every process samples its share too, gathered in the same order
        drawn = gather_shards(generate_samples(model, processor, share, batch_size, max_new_tokens, samples,
                                               sampling or {}, False, reasoning))
    if not process_state().is_main_process:
        return None, None
    completions = [completion for part, _ in shards for completion in part]
    predictions = []
    for record, (text, n_tokens) in zip(records, completions, strict=True):
        scored = (text, record["options"], record["answer_label"], record["answer_text"], reasoning)
        predictions.append({
            "id": record["id"],
            "question_type": record["question_type"],
            "question": record["question"],
            "options": list(record["options"]),
            "answer_label": record["answer_label"],
            "answer_text": record["answer_text"],
            "completion": text,
            "reasoning": well_formed_reasoning(text, reasoning),  # None unless well-formed, as for every score
            "parsed_answer": parsed_answer(text, record["options"], reasoning),
            "correct": is_correct(*scored),
            **({"f1": answer_f1(*scored)} if is_open(record) else {}),
            "well_formed": is_well_formed(text, reasoning),
            "completion_tokens": n_tokens,
            "image_key": record_image_key(record),  # question-level intervals resample images (analysis)
            **(sample_fields(drawn[len(predictions)], record, reasoning) if samples else {}),
        })
    if similarity is not None:
        references = [similarity_reference(r) for r in records]
        scores = similarity([p["reasoning"] for p in predictions], [text for text, _ in references])
        for row, score, (_, kind) in zip(predictions, scores, references, strict=True):
            row["similarity"], row["similarity_reference"] = score, kind
    if judge is not None:
        requests, failures = judge.requests, judge.failures
        for row, verdict in zip(predictions, judge_verdicts(judge, predictions, records, reasoning), strict=True):
            row["judge_verdict"] = verdict
    if is_circular(records):  # a circular set: one row per question, right only if every rotation is
        predictions = fold_rotations(records, predictions)
    metrics = summarize(predictions) | sampled_metrics(predictions, pass_k) | circular_metrics(predictions)
    metrics["images"] = len({p["image_key"] for p in predictions})  # distinct images (the bootstrap's clusters)
    if judge is not None:  # this evaluation's share of the judge's counts (a cached verdict costs no request)
        metrics["judge/requests"], metrics["judge/failures"] = judge.requests - requests, judge.failures - failures
    metrics["perplexity"] = perplexity(sum(n for _, (n, _) in shards), sum(t for _, (_, t) in shards))
    return metrics, predictions


def similarity_reference(record: dict) -> tuple[str, str]:
    """What the reasoning is compared with: the reference rationale where the dataset has one, else the gold
    answer's text (PMC-VQA, VQA-RAD, ...: does the reasoning arrive at the right finding?). (text, kind)."""
    if record["rationale"]:
        return record["rationale"], "rationale"
    return record["answer_text"], "answer_text"


def judge_verdicts(judge, predictions: list[dict], records: list[dict], reasoning: str = DEFAULT) -> list[float | None]:
    """The judge's verdict on each prediction's reasoning; 0 where there is none (as in the reward); None where
    the judge failed (judge.on_failure=zero): a failure is not a "no"."""
    findings = [findings_json(r) for r in records]
    items = judge_items([p["completion"] for p in predictions], [r["question"] for r in records],
                        [r["answer_text"] for r in records], findings, reasoning)
    return judged_scores(judge, items, failed=None)


def summarize(predictions: list[dict]) -> dict:
    """Aggregates prediction rows into flat metrics (percent for rates, mean tokens, mean cosine).

    Keys: accuracy (every question), closed/accuracy (closed questions, when there are any),
    open/exact_match and open/f1 (open questions, when there are any), accuracy/<question_type>,
    format_rate, judge_score (percent 0-100); completion_tokens (mean tokens); similarity (mean cosine
    in [-1, 1], against the rationale or else the gold answer's text: similarity_reference). similarity /
    judge_score only when every row has one (the evaluation leaves them out without a similarity model / judge).
    """
    n = len(predictions)
    metrics = {
        "accuracy": _percent([p["correct"] for p in predictions]),
        "format_rate": _percent([p["well_formed"] for p in predictions]),
        "completion_tokens": sum(p["completion_tokens"] for p in predictions) / n,
    }
    if all("similarity" in p for p in predictions):
        metrics["similarity"] = sum(p["similarity"] for p in predictions) / n
    if all("judge_verdict" in p for p in predictions):
        verdicts = [p["judge_verdict"] for p in predictions]
        judged = [v for v in verdicts if v is not None]
        # A score with failed verdicts is not the judge's score of this set: null (analysis leaves it out and
        # names the run), with the failures counted; the judged rows' score beside it for inspection.
        metrics["judge_score"] = _percent(verdicts) if len(judged) == n else None
        if len(judged) < n:
            metrics["judge_score_of_judged"] = _percent(judged) if judged else None
    closed = [p for p in predictions if not is_open(p)]
    opened = [p for p in predictions if is_open(p)]
    if closed:
        metrics["closed/accuracy"] = _percent([p["correct"] for p in closed])
    if opened:
        metrics["open/exact_match"] = _percent([p["correct"] for p in opened])
        metrics["open/f1"] = _percent([p["f1"] for p in opened])
    by_type = defaultdict(list)
    for p in predictions:
        by_type[p["question_type"]].append(p["correct"])
    for question_type, correct in sorted(by_type.items()):
        metrics[f"accuracy/{question_type}"] = _percent(correct)
    return metrics


def _percent(values: list) -> float:
    """Mean of booleans or fractions in [0, 1], as a percentage."""
    return 100.0 * sum(values) / len(values)
