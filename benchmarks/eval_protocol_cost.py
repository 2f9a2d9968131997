"""What issue 39's evaluation protocol costs on the embedded default: seconds per evaluation of the shipped tiny
instruct on the synthetic test split, for the plain (greedy) evaluation, the sampled one (eval.samples), the blind set
and the circular set, with one torch thread. The numbers scale to the default's 1,000 test questions.

Usage: python benchmarks/eval_protocol_cost.py [--n 200] [--samples 8] [--checkpoint medvqa_rl/models/tiny_checkpoints/instruct]
Prints a markdown table; --json writes the numbers. What is timed is evaluate() as the run calls it (generation and
perplexity; no similarity model or judge, which the sampled and circular settings do not add to).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from medvqa_rl.data.protocol_variants import apply_variant
from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation import evaluate
from medvqa_rl.models.loading import load_model_and_processor

CHECKPOINT = Path(__file__).resolve().parents[1] / "medvqa_rl/models/tiny_checkpoints/instruct"


def timed(model, processor, records, **kwargs) -> tuple[float, dict]:
    torch.manual_seed(0)
    started = time.perf_counter()
    metrics, _ = evaluate(model, processor, records, batch_size=100, max_new_tokens=20, **kwargs)
    return time.perf_counter() - started, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(CHECKPOINT))
    parser.add_argument("--n", type=int, default=200, help="test questions timed (the default run has 1,000)")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, processor = load_model_and_processor(args.checkpoint)
    records = make_split("test", args.n, seed=0)
    rows = {}
    rows["greedy"] = timed(model, processor, records)
    rows[f"sampled (eval.samples={args.samples}), added"] = timed(
        model, processor, records, samples=args.samples, sampling={"temperature": 1.0, "top_p": 1.0})
    rows["blind"] = timed(model, processor, apply_variant(records, "blind", "blind"))
    rows["circular"] = timed(model, processor, apply_variant(records, "circular", "circular"))
    greedy = rows["greedy"][0]
    sampled_key = next(k for k in rows if k.startswith("sampled"))
    rows[sampled_key] = (rows[sampled_key][0] - greedy, rows[sampled_key][1])  # on top of the greedy pass it runs
    print(f"# eval protocol cost: {args.n} questions, tiny instruct, 1 torch thread, {platform.node()} "
          f"({torch.get_num_threads()} thread)\n")
    print("| evaluation | s per evaluation | s per 1,000 questions | x greedy |")
    print("|---|---|---|---|")
    out = {}
    for name, (seconds, metrics) in rows.items():
        per_1000 = seconds * 1000 / args.n
        out[name] = {"seconds": seconds, "seconds_per_1000": per_1000, "metrics": metrics}
        print(f"| {name} | {seconds:.1f} | {per_1000:.0f} | {seconds / greedy:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "samples": args.samples, "rows": out}, indent=1))


if __name__ == "__main__":
    main()
