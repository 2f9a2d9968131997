"""Scoring a free-text answer against the reference: SQuAD's normalised exact match and token F1.

Normalisation (Rajpurkar et al. 2016, the SQuAD v1.1 evaluation script): lowercase, remove ASCII
punctuation, remove the articles a/an/the, collapse whitespace. Written out here because no installed
package offers it outside a heavy metrics dependency; the behaviour follows the official script
(punctuation is deleted, not replaced by a space: "t2-weighted" -> "t2weighted" on both sides).
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise_answer(text: str) -> str:
    """Lowercase, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, reference: str) -> bool:
    """True iff the two answers are equal after normalisation."""
    return normalise_answer(prediction) == normalise_answer(reference)


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (tokens counted with multiplicity) after normalisation,
    in [0, 1]. As in SQuAD, when either side has no tokens left it is 1.0 if both are empty, else 0.0."""
    predicted, gold = normalise_answer(prediction).split(), normalise_answer(reference).split()
    if not predicted or not gold:
        return float(predicted == gold)
    overlap = sum((Counter(predicted) & Counter(gold)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(gold)
    return 2 * precision * recall / (precision + recall)
