"""Batched greedy evaluation vs one-by-one `generate`, on the tiny instruct model, in one run.

Prints questions per second for both and their ratio (target: batched >= 8x).
Usage: python benchmarks/eval_batching.py [--n 200] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import time

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation import generate_greedy
from medvqa_rl.models.loading import load_model_and_processor
from medvqa_rl.models.tiny_inits import tiny_checkpoint

from pathlib import Path

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config")
    path = tiny_checkpoint("instruct", OmegaConf.to_container(cfg.tiny_model, resolve=True), cfg.cache_dir)
    model, processor = load_model_and_processor(str(path))
    records = make_split("test", args.n, seed=0)
    max_new = cfg.eval.max_new_tokens
    generate_greedy(model, processor, records[:4], 4, max_new)  # warm-up

    start = time.perf_counter()
    batched = generate_greedy(model, processor, records, args.batch_size, max_new)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    single = generate_greedy(model, processor, records, 1, max_new)
    t_single = time.perf_counter() - start

    agree = sum(a[0] == b[0] for a, b in zip(batched, single)) / len(records)
    print(f"questions: {len(records)}  batch size: {args.batch_size}")
    print(f"one-by-one: {len(records) / t_single:8.1f} q/s ({t_single:.2f} s)")
    print(f"batched:    {len(records) / t_batched:8.1f} q/s ({t_batched:.2f} s)")
    print(f"speed-up batched / one-by-one: {t_single / t_batched:.1f}x")
    print(f"identical completions: {100 * agree:.1f}%")


if __name__ == "__main__":
    main()
