"""How much room an init checkpoint leaves GRPO on synthetic questions: greedy accuracy, how often its
reasoning names the right finding, and how often its letter follows that reasoning.

The synthetic rationales end with the finding ("the lesions are at left upper"), so the option the
reasoning names is read off its last words. The tiny-instruct build probes held-out questions with this
once it is trained (medvqa_rl/models/tiny_inits.py); benchmarks/probe_init.py prints it for any checkpoint.
"""

from __future__ import annotations

import torch

from medvqa_rl.models.generation import generate_greedy, generate_sampled
from medvqa_rl.prompts import LETTERS
from medvqa_rl.rewards import answer_letter, is_well_formed, reasoning_text


def named_option(text: str, options: list[str]) -> str | None:
    """The option the reasoning ends with; the longest wins, so "very large" is not read as "large"."""
    reasoning = (reasoning_text(text) or "").strip()
    named = [o for o in options if reasoning == o or reasoning.endswith(" " + o)]
    return max(named, key=len) if named else None


def probe_completions(texts: list[str], records: list[dict]) -> dict[str, float]:
    """Percentages (0-100) over ``records``: greedy_accuracy, format, reasoning_right, letter_follows
    (the letter is the option the reasoning names, right or wrong)."""
    n = len(records)
    counts = {"greedy_accuracy": 0, "format": 0, "reasoning_right": 0, "letter_follows": 0}
    for text, record in zip(texts, records):
        letter, named = answer_letter(text, record["options"]), named_option(text, record["options"])
        counts["greedy_accuracy"] += letter == record["answer_label"]
        counts["format"] += is_well_formed(text)
        counts["reasoning_right"] += named == record["answer_text"]
        counts["letter_follows"] += (named is not None and letter is not None
                                     and record["options"][LETTERS.index(letter)] == named)
    return {key: 100 * value / n for key, value in counts.items()}


def probe_init(model, processor, records: list[dict], max_new_tokens: int = 24, batch_size: int = 100) -> dict:
    """Greedy completions of ``model`` on ``records``, scored by probe_completions."""
    texts = [text for text, _ in generate_greedy(model, processor, records, batch_size, max_new_tokens)]
    return probe_completions(texts, records)


def probe_sampled(model, processor, records: list[dict], samples: int, seed: int, temperatures=(0.5, 1.0),
                  max_new_tokens: int = 24, batch_size: int = 50) -> dict:
    """How often ``model``'s sampled completions are in format and right: ``samples`` per record at each of
    ``temperatures`` (0.5 is GRPO's default rollout temperature), seeded; percentages keyed
    ``format_t<T>`` and ``accuracy_t<T>``."""
    repeated = [r for r in records for _ in range(samples)]
    result = {}
    for temperature in temperatures:
        torch.manual_seed(seed)
        texts = [text for text, _ in generate_sampled(model, processor, records, batch_size, max_new_tokens,
                                                       samples, temperature)]
        scores = probe_completions(texts, repeated)
        result[f"format_t{temperature:g}"] = scores["format"]
        result[f"accuracy_t{temperature:g}"] = scores["greedy_accuracy"]
    return result
