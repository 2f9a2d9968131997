"""Diagnoses an init checkpoint on the synthetic test split: how much room GRPO has.

Prints greedy accuracy, format rate, how often the reasoning names the right finding, how often the
letter agrees with the reasoning, and sampled accuracy, format rate and pass@k at a temperature.
Usage: python benchmarks/probe_init.py CHECKPOINT [--n 200] [--k 8] [--temperature 0.5]
"""

from __future__ import annotations

import argparse

import torch

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation import generate_greedy
from medvqa_rl.models.generation import generate_sampled
from medvqa_rl.models.init_probe import probe_completions
from medvqa_rl.models.loading import load_model_and_processor
from medvqa_rl.rewards import answer_letter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=0.5)
    args = parser.parse_args()
    model, processor = load_model_and_processor(args.checkpoint)
    records = make_split("test", args.n, seed=0)
    greedy = [text for text, _ in generate_greedy(model, processor, records, 100, 24)]
    for key, value in probe_completions(greedy, records).items():
        print(f"{key.replace('_', ' ')} {value:.1f}%")
    for t in greedy[:5]:
        print("  ", repr(t))
    torch.manual_seed(0)
    sampled_records = records[:100]
    repeated = [r for r in sampled_records for _ in range(args.k)]
    sampled = [text for text, _ in generate_sampled(model, processor, sampled_records, 25, 24, args.k, args.temperature)]
    rates = probe_completions(sampled, repeated)
    correct = [answer_letter(text, r["options"]) == r["answer_label"] for text, r in zip(sampled, repeated)]
    pass_at_k = sum(any(correct[i * args.k:(i + 1) * args.k]) for i in range(len(sampled_records)))
    print(f"sampled @T={args.temperature}: accuracy {rates['greedy_accuracy']:.1f}%  format {rates['format']:.1f}%  "
          f"pass@{args.k} {100 * pass_at_k / len(sampled_records):.1f}%")


if __name__ == "__main__":
    main()
