"""Counting the tokens of a piece of text as the model sees it: inside the whole text's own tokenization.

A byte-level BPE (Qwen2's) merges the tags with their neighbours: "ct.</think><answer>B</answer>" is
"ct", ".</", "think", "><", "answer", ">B", "</", "answer", ">". Tokenizing a piece on its own ("ct.", or
"<answer>B</answer>") can give a different number of tokens than the piece spans in the text the model reads
and writes, so counts come from the character offsets (offset mapping) of the whole text's tokenization.
"""

from __future__ import annotations


def tokens_overlapping(tokenizer, text: str, start: int, end: int) -> int:
    """How many tokens of `text`'s tokenization (no special tokens added) hold at least one character of
    text[start:end]. A token merged across the edge (".</" at the end of a reasoning, "><" before an answer)
    counts: it carries characters of the piece. Needs a fast tokenizer (offset mapping)."""
    if end <= start:
        return 0
    # Lone surrogates (undecodable bytes read with surrogateescape) cannot reach a Rust tokenizer; "?" keeps
    # every character's offset.
    safe = text.encode("utf-8", "replace").decode("utf-8")
    offsets = tokenizer(safe, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return sum(1 for first, last in offsets if first < end and last > start)
