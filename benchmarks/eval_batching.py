"""Batched greedy evaluation vs one-by-one `generate`, on the tiny instruct model, in one run; then the
time of the whole evaluation (generation, perplexity, similarity, rule judge) of --full-n questions.

Prints questions per second for both and their ratio (target: batched >= 8x), and the full evaluation's
time split by stage (goal: 1,000 questions within 15 s on 2 cores).
Usage: python benchmarks/eval_batching.py [--n 200] [--batch-size 100] [--full-n 1000]
"""

from __future__ import annotations

import argparse
import time

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.evaluation import ReasoningSimilarity, answer_perplexity, evaluate, generate_greedy
from medvqa_rl.judges import RuleJudge
from medvqa_rl.models.loading import load_model_and_processor
from medvqa_rl.models.tiny_inits import tiny_checkpoint

from pathlib import Path

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--full-n", type=int, default=1000)
    args = parser.parse_args()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config")
    path = tiny_checkpoint("instruct", OmegaConf.to_container(cfg.family.build, resolve=True), cfg.cache_dir)
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

    records = make_split("test", args.full_n, seed=0)
    similarity = ReasoningSimilarity(cfg.eval.similarity_model, cfg.eval.similarity_device)
    start = time.perf_counter()
    generate_greedy(model, processor, records, args.batch_size, max_new)
    t_generate = time.perf_counter() - start
    start = time.perf_counter()
    answer_perplexity(model, processor, records, [None] * len(records), args.batch_size)
    t_perplexity = time.perf_counter() - start
    start = time.perf_counter()
    metrics, _ = evaluate(model, processor, records, batch_size=args.batch_size, max_new_tokens=max_new,
                          similarity=similarity, judge=RuleJudge())
    t_full = time.perf_counter() - start
    # Each interval is timed on its own (a difference of noisy timings can come out negative).
    print(f"full evaluation of {len(records)} questions: {t_full:.1f} s; measured apart: "
          f"generation {t_generate:.1f} s, perplexity {t_perplexity:.1f} s")
    print(f"accuracy {metrics['accuracy']:.1f}%  similarity {metrics['similarity']:.3f}  "
          f"judge score {metrics['judge_score']:.1f}%")


if __name__ == "__main__":
    main()
