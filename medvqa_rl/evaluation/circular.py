"""Circular evaluation (VLMEvalKit's CircularEval): a circular test set asks each closed question once per rotation of
its options (medvqa_rl/data/protocol_variants.py); here the rotations' prediction rows fold back into one row per
question, which is right only if every rotation is right. So the set's `accuracy` is the circular accuracy, and its
per-question outcomes pair with the in-domain set's (the same id and question digest: rotation 0 is the question).

Beside it (percent, of the set's questions): plain_accuracy (rotation 0 alone: the question as the dataset asks it),
rotation_accuracy (every rotation counted once), and follows_position (of the closed questions: those whose parsed answer is the same
letter in every rotation while the gold moved: the answer follows the position, not the content).
"""

from __future__ import annotations

from collections.abc import Sequence

CORRECT, ANSWERS = "rotations_correct", "rotations_answers"


def is_circular(records: Sequence[dict]) -> bool:
    """Whether the records are a circular set's rotations."""
    return len(records) > 0 and "rotation" in records[0]


def fold_rotations(records: Sequence[dict], predictions: list[dict]) -> list[dict]:
    """One row per question from the rotations' rows (records and predictions aligned, rotations in order): rotation
    0's row (its id, question, options, label, completion, judge verdict, similarity) with correct = every rotation
    correct, plain_correct = rotation 0's, well_formed = every rotation's, completion_tokens = their mean, and
    rotations_correct / rotations_answers (per rotation), follows_position (closed, 2+ rotations, one letter)."""
    folded, groups = [], {}
    for record, row in zip(records, predictions, strict=True):
        key = record["circular_of"]
        if key not in groups:
            groups[key] = []
            folded.append(key)
        groups[key].append(row)
    rows = []
    for key in folded:
        parts = groups[key]
        first = parts[0]
        answers = [p["parsed_answer"] for p in parts]
        row = {**first, "id": key, "correct": all(p["correct"] for p in parts), "plain_correct": first["correct"],
               "well_formed": all(p["well_formed"] for p in parts),
               "completion_tokens": sum(p["completion_tokens"] for p in parts) / len(parts),
               CORRECT: [p["correct"] for p in parts], ANSWERS: answers,
               "follows_position": len(parts) > 1 and answers[0] is not None and len(set(answers)) == 1}
        rows.append(row)
    return rows


def circular_metrics(rows: Sequence[dict]) -> dict:
    """plain_accuracy, rotation_accuracy (percent of the questions, of the rotations) and follows_position (percent of
    the closed questions) of folded rows; {} for rows not folded."""
    if not rows or CORRECT not in rows[0]:
        return {}
    rotations = [ok for row in rows for ok in row[CORRECT]]
    rotated = [r for r in rows if len(r[CORRECT]) > 1]  # closed questions (open ones are asked once)
    return {"plain_accuracy": 100.0 * sum(r["plain_correct"] for r in rows) / len(rows),
            "rotation_accuracy": 100.0 * sum(rotations) / len(rotations),
            **({"follows_position": 100.0 * sum(r["follows_position"] for r in rotated) / len(rotated)}
               if rotated else {})}
