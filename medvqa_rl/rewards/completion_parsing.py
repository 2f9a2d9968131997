"""Parse `<think>...</think><answer>...</answer>` completions produced by the policy.

All functions are pure and operate on plain strings (characters, not tokens), so
reward classes built on them stay trivially picklable.
"""

from __future__ import annotations

import re
from typing import Any

# One character that does not start any of the four tags. Tempering the dot this way
# (instead of a lazy `.*?`) is what makes nested/duplicated tags fail to match.
_NO_TAG = r"(?:(?!</?think>|</?answer>).)"

FORMAT_PATTERN = re.compile(
    rf"\s*<think>{_NO_TAG}+</think>\s*<answer>{_NO_TAG}+</answer>\s*",
    re.DOTALL,
)
"""Whole-completion format; use with `fullmatch`. Both blocks must be non-empty."""



def completion_text(completion: Any) -> str:
    """Return the assistant text of one TRL completion.

    TRL hands over a plain string for standard prompts, or a list of message dicts
    for conversational prompts; message content may itself be a list of typed parts.
    """
    if isinstance(completion, str):
        return completion
    messages = [completion] if isinstance(completion, dict) else list(completion)
    texts = []
    for message in messages:
        # A message without a role is assumed to be the generated (assistant) turn.
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content", "")
        if isinstance(content, str):
            texts.append(content)
        else:  # list of parts; images or other modalities carry no answer text
            texts.extend(
                part.get("text", "") for part in content if part.get("type") == "text"
            )
    return "".join(texts)


def is_well_formed(text: str) -> bool:
    """True iff the whole text is exactly one think block followed by one answer block."""
    return FORMAT_PATTERN.fullmatch(text) is not None


def _single_block(text: str, tag: str) -> str | None:
    """Content of the only `<tag>...</tag>` block, or None if absent, unclosed or repeated.

    Counting tags (rather than regex-searching for a block) rejects nesting and
    duplicates, which would otherwise let the policy hedge over several answers.
    """
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"
    if text.count(open_tag) != 1 or text.count(close_tag) != 1:
        return None
    start = text.index(open_tag) + len(open_tag)
    end = text.find(close_tag)
    if end < start:
        return None
    return text[start:end]


def reasoning_text(text: str) -> str | None:
    """Stripped content of the single `<think>` block, or None if missing/unclosed/repeated."""
    content = _single_block(text, "think")
    return None if content is None else content.strip()


def answer_content(text: str) -> str | None:
    """Stripped content of the single `<answer>` block; None if absent, unclosed, repeated or empty."""
    content = _single_block(text, "answer")
    return None if content is None else (content.strip() or None)
