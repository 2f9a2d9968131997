"""Parse `<think>...</think><answer>...</answer>` completions produced by the policy.

A completion is **well-formed** when it is, in this order and with nothing but whitespace before, between and
after them: `<think>`, a reasoning with at least one non-whitespace character and no tag, `</think>`,
`<answer>`, an answer with at least one non-whitespace character and no tag, `</answer>` (R1-V's format,
with both blocks required to say something). The four tags are `<think>`, `</think>`, `<answer>`,
`</answer>`, matched exactly (case-sensitive). `well_formed` returns its parts; the format reward, the format
rate, accuracy, the length rewards, the semantic reward and the evaluation's reasoning all read a completion
through it, so one rule decides what counts (docs/metrics.md#format).

`answer_content` and `reasoning_text` read one block wherever it stands, for code that builds or probes
single blocks (DPO's rejected turns, the tiny-model probes); scores never use them on their own.

All functions are pure and operate on plain strings (characters, not tokens), so reward classes built on them
stay trivially picklable. None of them raises on any string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TAG = re.compile(r"</?(?:think|answer)>")
_LAYOUT = ["<think>", "</think>", "<answer>", "</answer>"]


@dataclass(frozen=True)
class WellFormed:
    """The two parts of a well-formed completion, stripped, and where they stand in its text: (start, end)
    character offsets, end exclusive, so text[start:end] == reasoning (answer)."""

    reasoning: str
    answer: str
    reasoning_span: tuple[int, int]
    answer_span: tuple[int, int]


def completion_text(completion: Any) -> str:
    """Return the assistant text of one TRL completion.

    TRL hands over a plain string for standard prompts, or a list of message dicts
    for conversational prompts; message content may itself be a list of typed parts.
    Bytes are decoded as UTF-8 with invalid sequences replaced; anything unreadable is "".
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, bytes | bytearray):
        return bytes(completion).decode("utf-8", "replace")
    messages = [completion] if isinstance(completion, dict) else completion
    if not isinstance(messages, list | tuple):
        return ""
    texts = []
    for message in messages:
        # A message without a role is assumed to be the generated (assistant) turn.
        if not isinstance(message, dict) or message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content", "")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):  # typed parts; images or other modalities carry no answer text
            texts.extend(part["text"] for part in content
                         if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str))
    return "".join(texts)


def well_formed(text: str) -> WellFormed | None:
    """The reasoning and answer of a well-formed completion (module docstring), or None.

    Tags are found by one scan, not by a regex over the contents, so a 10,000-character completion costs
    one linear pass and nested, repeated, unclosed or reordered tags all fail the same check.
    """
    if not isinstance(text, str):
        return None
    tags = list(_TAG.finditer(text))
    if [tag.group() for tag in tags] != _LAYOUT:
        return None
    think, think_end, answer, answer_end = tags
    outside = (text[: think.start()], text[think_end.end() : answer.start()], text[answer_end.end() :])
    if any(gap.strip() for gap in outside):
        return None
    reasoning = _stripped_span(text, think.end(), think_end.start())
    answer_span = _stripped_span(text, answer.end(), answer_end.start())
    if reasoning is None or answer_span is None:
        return None
    return WellFormed(text[slice(*reasoning)], text[slice(*answer_span)], reasoning, answer_span)


def is_well_formed(text: str) -> bool:
    """True iff the completion is well-formed (module docstring)."""
    return well_formed(text) is not None


def well_formed_reasoning(text: str) -> str | None:
    """The stripped reasoning of a well-formed completion; None for any other completion."""
    parts = well_formed(text)
    return None if parts is None else parts.reasoning


def _stripped_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """(start, end) of text[start:end] without its leading and trailing whitespace; None if nothing is left."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    offset = start + len(piece) - len(piece.lstrip())
    return offset, offset + len(stripped)


def _single_block(text: str, tag: str) -> str | None:
    """Content of the only `<tag>...</tag>` block, or None if absent, unclosed or repeated.

    Counting tags (rather than regex-searching for a block) rejects nesting and
    duplicates, which would otherwise let the policy hedge over several answers.
    """
    if not isinstance(text, str):
        return None
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"
    if text.count(open_tag) != 1 or text.count(close_tag) != 1:
        return None
    start = text.index(open_tag) + len(open_tag)
    end = text.find(close_tag)
    if end < start:
        return None
    return text[start:end]


def reasoning_text(text: str) -> str | None:
    """Stripped content of the single `<think>` block wherever it stands; None if absent, unclosed, repeated or
    empty. Scores use `well_formed_reasoning` instead."""
    content = _single_block(text, "think")
    return None if content is None else (content.strip() or None)


def answer_content(text: str) -> str | None:
    """Stripped content of the single `<answer>` block wherever it stands; None if absent, unclosed, repeated
    or empty. Scores read the answer of a well-formed completion (`well_formed`) instead."""
    content = _single_block(text, "answer")
    return None if content is None else (content.strip() or None)
