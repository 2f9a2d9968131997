"""Our GRPO wiring vs a bare TRL GRPOTrainer script: same tiny model, data and settings, one run.

Both trainers are timed on the same number of steps, interleaved in rounds so that machine noise
hits both alike. Prints mean seconds per step and the ratio ours / bare (target <= 1.05).
Usage: python benchmarks/grpo_overhead.py [--steps 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import torch
from datasets import Dataset
from hydra import compose, initialize_config_dir
from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from medvqa_rl.data.splits import load_splits
from medvqa_rl.models.loading import init_checkpoint, load_model_and_processor
from medvqa_rl.training.grpo import build_grpo_trainer, reward_functions

CONF = str(Path(__file__).resolve().parents[1] / "conf")


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times, self._start = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def bare_trl_trainer(checkpoint: str, records: list[dict], cfg, output_dir: str) -> GRPOTrainer:
    """What a researcher would write with TRL alone: a dataset, two reward functions, GRPOConfig."""
    processor = AutoProcessor.from_pretrained(checkpoint)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=torch.float32)
    letters = "ABCD"
    dataset = Dataset.from_list([
        {
            "prompt": [{"role": "user", "content": r["question"] + "\n" + "\n".join(
                f"{letters[i]}. {o}" for i, o in enumerate(r["options"])) +
                "\nReason in <think></think>, then give the letter in <answer></answer>."}],
            "image": r["image"],
            "answer_label": r["answer_label"],
        }
        for r in records
    ])

    def accuracy(completions, answer_label, **kwargs):
        found = [re.findall(r"<answer>\s*([A-D])\s*</answer>", c[0]["content"]) for c in completions]
        return [float(len(f) == 1 and f[0] == a) for f, a in zip(found, answer_label)]

    def format_reward(completions, **kwargs):
        pattern = re.compile(r"\s*<think>.+?</think>\s*<answer>.+?</answer>\s*", re.DOTALL)
        return [float(bool(pattern.fullmatch(c[0]["content"]))) for c in completions]

    m = cfg.method
    args = GRPOConfig(
        output_dir=output_dir, seed=cfg.seed, max_steps=m.max_steps, learning_rate=m.learning_rate,
        warmup_steps=m.warmup_steps, per_device_train_batch_size=m.per_device_train_batch_size,
        num_generations=m.num_generations, max_completion_length=m.max_completion_length,
        cache_implementation=m.cache_implementation,
        temperature=m.temperature, mask_truncated_completions=m.mask_truncated_completions, beta=m.beta,
        loss_type=cfg.bias.loss_type, scale_rewards=cfg.bias.scale_rewards, reward_weights=[1.0, 0.5],
        bf16=False, gradient_checkpointing=False, logging_steps=m.logging_steps, save_strategy="no",
        report_to="none", disable_tqdm=True,
    )
    return GRPOTrainer(model=model, reward_funcs=[accuracy, format_reward], args=args, train_dataset=dataset,
                       processing_class=processor)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[f"method.max_steps={args.steps + 1}", "wandb.mode=disabled"])
    train, _ = load_splits(cfg.dataset)
    checkpoint = init_checkpoint(cfg)

    times = {"ours": [], "bare": []}
    for round_ in range(args.rounds):
        for name in ("bare", "ours") if round_ % 2 else ("ours", "bare"):
            if name == "ours":
                model, processor = load_model_and_processor(checkpoint)
                rewards = reward_functions(cfg, processor.tokenizer)
                trainer = build_grpo_trainer(cfg, model, processor, rewards, train, "/tmp/bench_ours",
                                             "none")
            else:
                trainer = bare_trl_trainer(checkpoint, train, cfg, "/tmp/bench_bare")
            timer = StepTimer()
            trainer.add_callback(timer)
            trainer.train()
            times[name] += timer.times[1:]  # the first step pays one-off warm-up costs

    ours, bare = (sum(times[k]) / len(times[k]) for k in ("ours", "bare"))
    print(f"steps timed: {len(times['ours'])} each ({cfg.method.per_device_train_batch_size} completions/step)")
    print(f"bare TRL: {bare:.3f} s/step")
    print(f"ours:     {ours:.3f} s/step")
    print(f"ratio ours / bare: {ours / bare:.3f}")


if __name__ == "__main__":
    main()
