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

The layout is the reasoning format's (medvqa_rl/reasoning_formats.py; `reasoning`, default the paper's `think`):
`none` is one non-blank `<answer>` block alone (no reasoning; a `<think>` tag anywhere fails), `after` the
`<answer>` block then a non-blank `<think>` block that explains it. The same rules hold in every format.

All functions are pure and operate on plain strings (characters, not tokens), so reward classes built on them
stay trivially picklable. None of them raises on any string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from medvqa_rl.reasoning_formats import ANSWER, DEFAULT, THINK, reasoning_format

_TAG = re.compile(r"</?(?:think|answer)>")


@dataclass(frozen=True)
class WellFormed:
    """The two parts of a well-formed completion, stripped, and where they stand in its text: (start, end)
    character offsets, end exclusive, so text[start:end] == reasoning (answer). A format without reasoning
    (none): reasoning and its span None."""

    reasoning: str | None
    answer: str
    reasoning_span: tuple[int, int] | None
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


def well_formed(text: str, reasoning: str = DEFAULT) -> WellFormed | None:
    """The reasoning and answer of a completion well-formed in the reasoning format (module docstring), or None.

    Tags are found by one scan, not by a regex over the contents, so a 10,000-character completion costs
    one linear pass and nested, repeated, unclosed or reordered tags all fail the same check.
    """
    if not isinstance(text, str):
        return None
    fmt = reasoning_format(reasoning)
    tags = list(_TAG.finditer(text))
    if [tag.group() for tag in tags] != fmt.layout:
        return None
    opened, closed = tags[::2], tags[1::2]
    # Before the first block, between blocks, after the last: whitespace only.
    outside = zip([0, *(tag.end() for tag in closed)], [*(tag.start() for tag in opened), len(text)])
    if any(text[start:end].strip() for start, end in outside):
        return None
    spans = {block: _stripped_span(text, start.end(), end.start())
             for block, start, end in zip(fmt.blocks, opened, closed)}
    if None in spans.values():
        return None
    reasoning_span = spans.get(THINK)
    return WellFormed(None if reasoning_span is None else text[slice(*reasoning_span)],
                      text[slice(*spans[ANSWER])], reasoning_span, spans[ANSWER])


def is_well_formed(text: str, reasoning: str = DEFAULT) -> bool:
    """True iff the completion is well-formed in the reasoning format (module docstring)."""
    return well_formed(text, reasoning) is not None


def well_formed_reasoning(text: str, reasoning: str = DEFAULT) -> str | None:
    """The stripped reasoning of a well-formed completion; None for any other completion, and always in a format
    without reasoning (none)."""
    parts = well_formed(text, reasoning)
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
