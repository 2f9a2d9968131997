"""A short GRPO run with vLLM rollouts (method.use_vllm=true, TRL's colocate mode) through the ordinary run(): does the
reward rise, and does the record say which engine generated? Prints the reward per logged step, the mean of the
first and last quarter, and the record's engine keys; with --compare, the same run with transformers' generate.

Colocate mode runs vLLM inside this process (distributed_executor_backend="external_launcher" over a one-process
torch.distributed group that TRL sets up). It needs a GPU: on a CPU machine the run stops before loading, because
vLLM's CPU build drops each linear layer's weights once it has repacked them and TRL's weight sync then fails
(docs/paper_setting.md#vllm-rollouts).
Usage: python benchmarks/vllm_grpo.py [--steps 30] [--compare] [hydra overrides...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from medvqa_rl.run import run

CONF = str(Path(__file__).resolve().parents[1] / "conf")
REWARD = "reward"  # TRL's logged total (weighted) reward per step


def one_run(overrides: list[str], root: Path) -> tuple[dict, list[dict], float]:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["wandb.mode=disabled", f"cache_dir={root / 'cache'}", *overrides])
    start = time.perf_counter()
    record = run(cfg, root / "run")
    seconds = time.perf_counter() - start
    history = [json.loads(line) for line in (root / "run" / "history.jsonl").read_text().splitlines()]
    return record, [row for row in history if REWARD in row], seconds


def report(name: str, record: dict, history: list[dict], seconds: float) -> None:
    rewards = [row[REWARD] for row in history]
    quarter = max(1, len(rewards) // 4)
    print(f"\n{name}: {len(rewards)} logged steps in {seconds:.0f} s; train/rollout_engine={record['train/rollout_engine']}, "
          f"eval/backend={record['eval/backend']}")
    print("reward per step:", " ".join(f"{r:.3f}" for r in rewards))
    print(f"mean reward, first {quarter} steps {sum(rewards[:quarter]) / quarter:.3f} -> "
          f"last {quarter} steps {sum(rewards[-quarter:]) / quarter:.3f}")
    print(f"test accuracy: init {record['init/test/accuracy']:.1f}% -> trained {record['test/accuracy']:.1f}%")
    extra = {k: v for k, v in history[-1].items() if "vllm" in k or "is_ratio" in k or "sampling" in k}
    if extra:
        print("last step's vLLM metrics:", extra)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compare", action="store_true", help="also run the same settings with generate")
    args, overrides = parser.parse_known_args()
    common = [f"method.max_steps={args.steps}", "method.logging_steps=1", "save_model=true", *overrides]
    arms = [("vLLM colocate", ["method.use_vllm=true", "method.vllm_mode=colocate"])]
    if args.compare:
        arms.append(("generate", ["method.use_vllm=false"]))
    for name, arm in arms:
        with tempfile.TemporaryDirectory() as tmp:
            report(name, *one_run(common + arm, Path(tmp)))


if __name__ == "__main__":
    main()
