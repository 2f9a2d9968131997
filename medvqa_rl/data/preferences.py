"""Rejected responses for DPO pairs: a confident, well-formed answer for a wrong option."""

from __future__ import annotations

import zlib

from medvqa_rl.prompts import LETTERS, reference_completion


def wrong_option_index(record: dict, seed: int) -> int:
    """A wrong option, drawn uniformly and deterministically per (seed, record id)."""
    gold = LETTERS.index(record["answer_label"])
    wrong = [i for i in range(len(record["options"])) if i != gold]
    return wrong[zlib.crc32(f"{seed}:{record['id']}".encode()) % len(wrong)]


def rejected_completion(record: dict, seed: int) -> str:
    """The reference rationale with the gold answer's text (its last mention) replaced by the wrong option's
    text, then the wrong letter. So chosen and rejected differ exactly in the finding and the letter; a
    rationale that does not name the answer is kept as is and only the letter differs."""
    index = wrong_option_index(record, seed)
    rationale, gold_text = record["rationale"], record["answer_text"]
    at = rationale.lower().rfind(gold_text.lower())
    if at >= 0:
        rationale = rationale[:at] + record["options"][index] + rationale[at + len(gold_text):]
    return reference_completion(rationale, LETTERS[index])
