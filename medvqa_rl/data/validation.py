"""Row validation for real datasets, before any training: one clear error, or skip with counts.

Every loader turns its rows into candidate records carrying `source` (file) and `line` (1-based line
of that file, header = line 1), plus `image_ref` (what to open). Nothing is dropped silently: in
`error` mode the first offending rows are listed with file and line; in `skip` mode they are left
out and counted per reason (the counts go to the log and to metrics.json as `data/skipped/<reason>`).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from medvqa_rl.data.encoded_images import processed_image_bytes
from medvqa_rl.questions import is_open
from medvqa_rl.prompts import LETTERS

log = logging.getLogger(__name__)

ON_BAD_ROW = ("error", "skip")
REASONS = ("missing_image", "corrupt_image", "empty_question", "empty_answer", "label_on_open_question",
           "label_not_in_options", "label_disagrees_with_answer", "duplicate_id")
SHOWN = 5  # offending rows listed in an error


class BadRowsError(ValueError):
    """Rows that cannot be trained or evaluated on; the message lists the first ones with file and line."""


@dataclass(frozen=True)
class BadRow:
    source: str
    line: int
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}: {self.detail}"


def normalise(text: str) -> str:
    """Lowercase, strip, collapse whitespace: how answer texts are compared with option texts."""
    return re.sub(r"\s+", " ", str(text)).strip().lower()


def row_problem(record: dict, seen_ids: set[str]) -> tuple[str, str] | None:
    """(reason, detail) of the first problem with a record's text fields, or None. A closed record's label
    must name an option that agrees with its answer text; an open one (no options) needs a non-empty
    answer text and no label."""
    if not str(record["question"]).strip():
        return "empty_question", "the question is empty"
    problem = _open_problem(record) if is_open(record) else _closed_problem(record)
    if problem is None and record["id"] in seen_ids:
        return "duplicate_id", f"id {record['id']!r} appears earlier"
    return problem


def _closed_problem(record: dict) -> tuple[str, str] | None:
    letters = LETTERS[: len(record["options"])]
    if record["answer_label"] not in letters:
        return "label_not_in_options", f"label {record['answer_label']!r} is not one of the options {list(letters)}"
    gold = record["options"][letters.index(record["answer_label"])]
    if record.get("answer_text") is not None and normalise(record["answer_text"]) != normalise(gold):
        return ("label_disagrees_with_answer",
                f"label {record['answer_label']} is option {gold!r} but the answer is {record['answer_text']!r}")
    return None


def _open_problem(record: dict) -> tuple[str, str] | None:
    """Free text: the answer is all there is to score against, and a letter would name no option."""
    if not str(record.get("answer_text") or "").strip():
        return "empty_answer", "the open question's answer is empty"
    if record["answer_label"]:
        return "label_on_open_question", f"label {record['answer_label']!r} given for a question without options"
    return None


def read_image(open_ref: Callable[[str], object], ref: str,
               max_image_side: int | None = None) -> tuple[bytes | None, tuple[str, str] | None]:
    """(the processed image encoded, None), or (None, (reason, detail)) when the file is missing or cannot
    be decoded. Decoding it here is the check; what is kept is bytes (medvqa_rl/data/encoded_images.py)."""
    try:
        handle = open_ref(ref)
    except (FileNotFoundError, KeyError):
        return None, ("missing_image", f"image {ref!r} not found")
    try:
        with handle:
            return processed_image_bytes(handle.read(), max_image_side), None
    except Exception as error:  # PIL raises several types for a truncated or non-image file
        return None, ("corrupt_image", f"image {ref!r} cannot be read ({type(error).__name__}: {error})")


def validate(candidates: list[dict], open_ref: Callable[[str], object], on_bad_row: str,
             max_image_side: int | None = None) -> tuple[list[dict], Counter]:
    """Records whose `image` is the checked image, RGB, shrunk to at most max_image_side pixels per side and
    kept encoded (bytes); and the count of skipped rows per reason.

    Raises BadRowsError listing the first offending rows when on_bad_row="error".
    """
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"dataset.on_bad_row must be one of {ON_BAD_ROW}, got {on_bad_row!r}")
    kept, bad, seen_ids = [], [], set()
    for candidate in candidates:
        problem = row_problem(candidate, seen_ids)
        image = None
        if problem is None:
            image, problem = read_image(open_ref, candidate["image_ref"], max_image_side)
        if problem is not None:
            bad.append(BadRow(candidate["source"], candidate["line"], *problem))
            if on_bad_row == "error" and len(bad) >= SHOWN:
                break
            continue
        seen_ids.add(candidate["id"])
        record = {k: v for k, v in candidate.items() if k not in ("source", "line", "image_ref")}
        kept.append(record | {"image": image})
    if bad and on_bad_row == "error":
        listed = "\n  ".join(str(b) for b in bad[:SHOWN])
        raise BadRowsError(f"{len(bad)}{'+' if len(bad) >= SHOWN else ''} bad rows (first {min(len(bad), SHOWN)}):"
                           f"\n  {listed}\nFix them, or set dataset.on_bad_row=skip to leave them out (counted).")
    counts = Counter(b.reason for b in bad)
    if counts:
        log.warning("skipped %d bad rows: %s", sum(counts.values()), dict(counts))
    return kept, counts
