"""Perplexity under the model, teacher-forced: of the gold answer after the model's own reasoning (the
evaluation's metric, the same quantity for every method and dataset), or of the reference turn (rationale +
answer, SFT's target). Only the target positions' logits are computed (memory-safe at a 150K vocabulary).

The target's tokens are those of the whole sequence's tokenization that hold its characters (offset mapping,
medvqa_rl/rewards/token_spans.py): a byte-level BPE merges "</think>" and "<answer>" into "><", which then
belongs to the target, and tokenizing the target alone could count one token more or less than it spans."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from medvqa_rl.questions import gold_answer
from medvqa_rl.models.supervised_stage import IGNORE_INDEX, SupervisedExample, TargetOnlyCollator
from medvqa_rl.prompts import assistant_turn, chat_prompt, reference_completion, reference_response
from medvqa_rl.reasoning_formats import DEFAULT, THINK, reasoning_format
from medvqa_rl.rewards.token_spans import tokens_overlapping

THINK_END = "</think>"


def reference_examples(processor, records: list[dict]) -> list[SupervisedExample]:
    """(image, chat prompt, reference turn) triples: the same texts SFT trains on and GRPO prompts with."""
    return [
        SupervisedExample(r["image"], chat_prompt(processor, r["question"], r["options"], r["image"]),
                          assistant_turn(processor, reference_response(r)))
        for r in records
    ]


def answer_examples(processor, records: list[dict], reasonings: list[str | None],
                    reasoning: str = DEFAULT) -> list[SupervisedExample]:
    """(image, chat prompt + the model's own `<think>reasoning</think>`, the gold `<answer>...</answer>` closing
    the turn). A completion that is not well-formed has no reasoning and contributes an empty think block.
    In a format whose answer comes first (none, after) nothing of the model's precedes it: the target is the gold
    answer block right after the prompt (none: and the end of turn; after: the block alone, as the explanation
    follows it)."""
    if reasoning_format(reasoning).blocks[0] != THINK:
        return [_answer_first(processor, record, reasoning) for record in records]
    examples = []
    for record, stated in zip(records, reasonings, strict=True):
        turn = assistant_turn(processor, reference_completion(stated or "", gold_answer(record)))
        split = turn.index(THINK_END) + len(THINK_END)
        prompt = chat_prompt(processor, record["question"], record["options"], record["image"])
        examples.append(SupervisedExample(record["image"], prompt + turn[:split], turn[split:]))
    return examples


def _answer_first(processor, record: dict, reasoning: str) -> SupervisedExample:
    """The gold answer block as the first thing the model writes (reasoning none or after)."""
    answer = reference_completion("", gold_answer(record), "none")
    target = assistant_turn(processor, answer) if reasoning == "none" else answer
    prompt = chat_prompt(processor, record["question"], record["options"], record["image"], reasoning)
    return SupervisedExample(record["image"], prompt, target)


def reference_perplexity(model, processor, records: list[dict], batch_size: int) -> float:
    """Perplexity of each record's reference turn (its rationale and gold answer in the trained format)."""
    return perplexity(*target_nll(model, processor, reference_examples(processor, records), batch_size))


def answer_perplexity(model, processor, records: list[dict], reasonings: list[str | None], batch_size: int,
                      reasoning: str = DEFAULT) -> float:
    """Perplexity of the gold answer block (and the end of turn) given the prompt and the model's own reasoning:
    how strongly the model's reasoning leads it to the right answer. Unlike the reference turn's perplexity it
    does not favour the method trained on that exact turn (SFT), and needs no reference rationale."""
    return perplexity(*target_nll(model, processor, answer_examples(processor, records, reasonings, reasoning),
                                  batch_size))


def perplexity(nll: float, tokens: int) -> float:
    """exp(total NLL / total target tokens): token-weighted, natural log."""
    return math.exp(nll / tokens)


@torch.no_grad()
def target_nll(model, processor, examples: list[SupervisedExample], batch_size: int) -> tuple[float, int]:
    """(total NLL, total target tokens) over all examples' targets; sums, so shards of a test set add up.

    Left padding puts every target at the end of its row, so the model computes logits for the last
    (longest target + 1) positions only. exp(NLL / tokens) is exp(model(..., labels).loss) when the
    examples fit in one batch of one.
    """
    total_nll, total_tokens = 0.0, 0
    model.eval()
    for start in range(0, len(examples), batch_size):
        # Examples per batch: a real split's images are decoded for their batch only (medvqa_rl/data/records.py).
        batch = target_batch(processor, examples[start : start + batch_size])
        labels = batch.pop("labels").to(model.device)
        keep = int((labels != IGNORE_INDEX).sum(dim=1).max()) + 1
        logits = model(**{k: v.to(model.device) for k, v in batch.items()}, logits_to_keep=keep).logits
        shifted_logits, shifted_labels = logits[:, :-1].float(), labels[:, -keep + 1 :]
        nll = F.cross_entropy(shifted_logits.reshape(-1, shifted_logits.shape[-1]), shifted_labels.reshape(-1),
                              ignore_index=IGNORE_INDEX, reduction="sum")
        total_nll += nll.item()
        total_tokens += int((shifted_labels != IGNORE_INDEX).sum())
    return total_nll, total_tokens


def target_batch(processor, examples: list[SupervisedExample]) -> dict:
    """The processor's left-padded batch with labels on each example's target tokens only: the last n tokens of
    its row, n = target_tokens(...)."""
    batch = TargetOnlyCollator(processor, padding_side="left")(examples)
    ids = batch["input_ids"]
    labels = torch.full_like(ids, IGNORE_INDEX)
    for row, example in enumerate(examples):
        n = target_tokens(processor.tokenizer, example)
        labels[row, ids.shape[1] - n :] = ids[row, ids.shape[1] - n :]
    batch["labels"] = labels
    return batch


def target_tokens(tokenizer, example: SupervisedExample) -> int:
    """Tokens of prompt + target, tokenized whole, that hold characters of the target. The image placeholder's
    expansion by the processor happens inside the prompt, before a special token, so the tail it tokenizes is
    the same."""
    text = example.prompt + example.target
    return tokens_overlapping(tokenizer, text, len(example.prompt), len(text))
