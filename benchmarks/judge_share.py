"""Judge time per GRPO step, as a share of the step, for the `rule` and `hf` judges (target <= 25%).

Runs the embedded default with reward=semantic for a few GRPO steps per judge, timing the semantic
reward call (judge + cache) inside each step. The `hf` judge is a GPT-2-shaped causal LM built from
config (random weights, the policy's tokenizer), because nothing may be downloaded here: its size is
set with --hf-layers/--hf-hidden (defaults ~ a 25M-parameter judge; BioGPT is 347M, BioMistral 7B).
Also prints the cache hit rate (share of verdicts served without asking the back end).
Usage: python benchmarks/judge_share.py [--steps 8] [--hf-layers 6] [--hf-hidden 512]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from grpo_overhead import StepTimer
from hydra import compose, initialize_config_dir
from transformers import GPT2Config, GPT2LMHeadModel

from medvqa_rl.data.splits import load_splits
from medvqa_rl.models.loading import load_init
from medvqa_rl.training.grpo import build_grpo_trainer, reward_functions

CONF = str(Path(__file__).resolve().parents[1] / "conf")


class TimedReward:
    """Wraps a reward callable, keeping its TRL name, and sums the seconds spent inside it."""

    def __init__(self, reward):
        self.reward, self.__name__, self.seconds, self.items = reward, reward.__name__, 0.0, 0

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        out = self.reward(*args, **kwargs)
        self.seconds += time.perf_counter() - started
        self.items += len(out)
        return out


def build_hf_judge_checkpoint(tokenizer, layers: int, hidden: int, directory: str) -> tuple[str, int]:
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=hidden, n_layer=layers,
                                       n_head=max(1, hidden // 64)))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory, sum(p.numel() for p in model.parameters())


def measure(judge: str, args, extra: list[str]) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["reward=semantic", f"judge={judge}", f"method.max_steps={args.steps + 1}",
                                           "wandb.mode=disabled", *extra])
    train, _ = load_splits(cfg.dataset)
    model, processor, _ = load_init(cfg)
    rewards = reward_functions(cfg, processor.tokenizer)
    timed = TimedReward(rewards[2])
    rewards[2] = timed
    trainer = build_grpo_trainer(cfg, model, processor, rewards, train, "/tmp/bench_judge", "none")
    steps = StepTimer()
    trainer.add_callback(steps)
    trainer.train()
    step_seconds = sum(steps.times)
    judge_obj = timed.reward.judge
    return {"judge": judge, "step_s": step_seconds / len(steps.times), "judge_s": timed.seconds / len(steps.times),
            "share": timed.seconds / step_seconds, "hit_rate": 1 - judge_obj.requests / max(timed.items, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--hf-layers", type=int, default=6)
    parser.add_argument("--hf-hidden", type=int, default=512)
    parser.add_argument("--hf-batch-size", type=int, default=64)
    args = parser.parse_args()

    rows = [measure("rule", args, [])]
    with tempfile.TemporaryDirectory() as directory:
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose("config")
        _, processor, _ = load_init(cfg)
        path, params = build_hf_judge_checkpoint(processor.tokenizer, args.hf_layers, args.hf_hidden, directory)
        # The policy's tiny tokenizer splits " Yes"/" No" into a shared leading space: use the bare words.
        rows.append(measure("hf", args, [f"judge.model={path}", f"judge.batch_size={args.hf_batch_size}",
                                         "judge.yes_token=Yes", "judge.no_token=No"]))
        print(f"hf judge: GPT-2 shape, {args.hf_layers} layers x {args.hf_hidden} hidden, {params / 1e6:.1f}M params")
    for r in rows:
        print(f"{r['judge']:>5}: step {r['step_s']:.3f} s, judge {r['judge_s']:.4f} s/step = {100 * r['share']:.1f}% "
              f"of the step (target <= 25%), cache hit rate {100 * r['hit_rate']:.0f}%")


if __name__ == "__main__":
    main()
