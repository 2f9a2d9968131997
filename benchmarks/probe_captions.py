"""How well a tiny base checkpoint sees: greedy image -> report captions on synthetic test images.

Prints, per finding (modality, location, size, count), the percentage of captions that state it
correctly. Use it when changing the caption pretraining budget (the base must see before GRPO can help).
Usage: python benchmarks/probe_captions.py BASE_CHECKPOINT [--n 100]
"""

from __future__ import annotations

import argparse

import torch

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.models.loading import load_model_and_processor
from medvqa_rl.models.tiny_inits import CAPTION_PROMPT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    model, processor = load_model_and_processor(args.checkpoint)
    records = make_split("test", args.n, seed=0)
    inputs = processor(text=[CAPTION_PROMPT] * len(records), images=[[r["image"]] for r in records],
                       return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**inputs, do_sample=False, max_new_tokens=24)
    captions = processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    hits = {"modality": 0, "location": 0, "size": 0, "count": 0}
    for caption, record in zip(captions, records):
        f = record["findings"]
        # Captions follow report_text: "<modality> scan. <count> <size> lesion(s) in the <location> region."
        head, _, rest = caption.partition(". ")
        count, _, size = rest.partition(" lesion")[0].partition(" ")
        hits["modality"] += head == f"{f['modality']} scan"
        hits["location"] += f"in the {f['location']} region" in rest
        hits["size"] += size == f["size"]
        hits["count"] += count == str(f["count"])
    print({k: round(100 * v / len(records), 1) for k, v in hits.items()})
    print("example:", repr(captions[0]))


if __name__ == "__main__":
    main()
