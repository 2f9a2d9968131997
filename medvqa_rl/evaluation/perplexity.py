"""Perplexity of the reference response (rationale + answer: the letter, or an open question's answer text; in
the trained format) under the model."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from medvqa_rl.models.supervised_stage import IGNORE_INDEX, SupervisedExample, TargetOnlyCollator
from medvqa_rl.prompts import assistant_turn, chat_prompt, reference_response


def reference_examples(processor, records: list[dict]) -> list[SupervisedExample]:
    """(image, chat prompt, reference turn) triples: the same texts SFT trains on and GRPO prompts with."""
    return [
        SupervisedExample(r["image"], chat_prompt(processor, r["question"], r["options"], r["image"]),
                          assistant_turn(processor, reference_response(r)))
        for r in records
    ]


@torch.no_grad()
def reference_perplexity(model, processor, records: list[dict], batch_size: int) -> float:
    """exp(total NLL / total target tokens) over all records' reference turns (token-weighted, natural log).

    Targets include the end-of-turn token. The same value as exp(model(..., labels).loss) when the
    records fit in one batch of one.
    """
    collate = TargetOnlyCollator(processor)
    total_nll, total_tokens = 0.0, 0
    model.eval()
    for start in range(0, len(records), batch_size):
        # Examples per batch: a real split's images are decoded for their batch only (medvqa_rl/data/records.py).
        batch = collate(reference_examples(processor, records[start : start + batch_size]))
        labels = batch.pop("labels").to(model.device)
        logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits.float()
        shifted_logits, shifted_labels = logits[:, :-1], labels[:, 1:]
        nll = F.cross_entropy(shifted_logits.reshape(-1, shifted_logits.shape[-1]), shifted_labels.reshape(-1),
                              ignore_index=IGNORE_INDEX, reduction="sum")
        total_nll += nll.item()
        total_tokens += int((shifted_labels != IGNORE_INDEX).sum())
    return math.exp(total_nll / total_tokens)
