"""Diagnoses an init checkpoint on the synthetic test split: how much room GRPO has.

Prints greedy accuracy, format rate, how often the reasoning names the right finding, how often the
letter agrees with the reasoning, and sampled accuracy / pass@k at a temperature.
Usage: python benchmarks/probe_init.py CHECKPOINT [--n 200] [--k 8] [--temperature 0.5]
"""

from __future__ import annotations

import argparse

import torch

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation import generate_greedy
from medvqa_rl.models.init_probe import probe_completions
from medvqa_rl.models.loading import load_model_and_processor
from medvqa_rl.prompts import prompt_conversation
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
    hits, any_hit = 0, 0
    for record in records[:100]:
        conversation = prompt_conversation(record["question"], record["options"], record["image"])
        inputs = processor.apply_chat_template([conversation], tokenize=True, add_generation_prompt=True, return_dict=True, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=True, temperature=args.temperature, max_new_tokens=24, num_return_sequences=args.k)
        texts = processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        correct = [answer_letter(t, record["options"]) == record["answer_label"] for t in texts]
        hits += sum(correct)
        any_hit += any(correct)
    print(f"sampled accuracy @T={args.temperature} {100 * hits / (100 * args.k):.1f}%  pass@{args.k} {any_hit}%")


if __name__ == "__main__":
    main()
