"""Rejected responses for DPO pairs: a confident, well-formed wrong answer.

Closed question: a wrong option, its text in the rationale and its letter. Open question (no options): the
answer text of another open question of the same split and question type whose answer differs after
normalisation; when there is none, another answer of any question of the split (so "yes"/"no" too). Both
draws are uniform and deterministic per (seed, record id), like the wrong option.
"""

from __future__ import annotations

import bisect
import zlib
from collections import defaultdict

from medvqa_rl.questions import is_open
from medvqa_rl.prompts import LETTERS, reference_completion
from medvqa_rl.reasoning_formats import DEFAULT
from medvqa_rl.rewards.open_answer import normalise_answer


def _draw(record: dict, seed: int, count: int) -> int:
    """An index in range(count), uniform and fixed per (seed, record id)."""
    return zlib.crc32(f"{seed}:{record['id']}".encode()) % count


def wrong_option_index(record: dict, seed: int) -> int:
    """A wrong option, drawn uniformly and deterministically per (seed, record id)."""
    gold = LETTERS.index(record["answer_label"])
    wrong = [i for i in range(len(record["options"])) if i != gold]
    return wrong[_draw(record, seed, len(wrong))]


class AnswerPool:
    """A split's distinct answers, one text per normalised form, sorted by that form (so a draw does not
    depend on the split's order): per question type of its open questions, and of all its questions.
    Built once per split, so a draw costs a bisect, not a pass over the split."""

    def __init__(self, split: list[dict]) -> None:
        by_type = defaultdict(list)
        for record in split:
            if is_open(record):
                by_type[record["question_type"]].append(record["answer_text"])
        self.by_type = {question_type: _distinct(texts) for question_type, texts in by_type.items()}
        self.any = _distinct([record["answer_text"] for record in split])

    def wrong_answer(self, record: dict, seed: int) -> str:
        gold = normalise_answer(record["answer_text"])
        for keys, texts in (self.by_type.get(record["question_type"], ([], [])), self.any):
            at = bisect.bisect_left(keys, gold)
            present = at < len(keys) and keys[at] == gold
            if len(keys) - present > 0:
                k = _draw(record, seed, len(keys) - present)
                return texts[k + 1 if present and k >= at else k]  # skip the gold answer's own slot
        raise ValueError(f"DPO: no answer in the split differs from {record['answer_text']!r} (record "
                         f"{record['id']}): an open question needs another answer to reject")


def _distinct(texts: list[str]) -> tuple[list[str], list[str]]:
    """(sorted normalised forms, one text for each: the smallest)."""
    first = {}
    for text in sorted(texts):
        first.setdefault(normalise_answer(text), text)
    keys = sorted(first)
    return keys, [first[key] for key in keys]


def rejected_completion(record: dict, seed: int, pool: AnswerPool | None = None, reasoning: str = DEFAULT) -> str:
    """The reference rationale with the gold answer's text (its last mention) replaced by the wrong answer's
    text, then the wrong answer: a letter, or for an open record the wrong text itself, drawn from `pool`
    (the split's answers). So chosen and rejected differ exactly in the finding and the answer; a rationale
    that does not name the answer is kept as is and only the answer differs."""
    if is_open(record):
        if pool is None:
            raise ValueError("an open question's rejected answer is drawn from its split: pass pool=AnswerPool(split)")
        wrong_text = wrong_answer = pool.wrong_answer(record, seed)
    else:
        index = wrong_option_index(record, seed)
        wrong_text, wrong_answer = record["options"][index], LETTERS[index]
    rationale, gold_text = record["rationale"], record["answer_text"]
    at = rationale.lower().rfind(gold_text.lower())
    if at >= 0:
        rationale = rationale[:at] + wrong_text + rationale[at + len(gold_text):]
    return reference_completion(rationale, wrong_answer, reasoning)  # in the chosen turn's format


def rejected_completions(records: list[dict], seed: int, reasoning: str = DEFAULT) -> list[str]:
    """rejected_completion of every record of a split (open records draw from this split's answers)."""
    pool = AnswerPool(records) if any(is_open(r) for r in records) else None
    return [rejected_completion(record, seed, pool, reasoning) for record in records]
