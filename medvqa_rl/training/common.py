"""What every method's TRL config shares: budget, optimiser, precision, logging; and the optional LoRA."""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings

import torch
from accelerate import PartialState
from omegaconf import DictConfig
from peft import LoraConfig
from transformers import TrainingArguments

log = logging.getLogger(__name__)

# TRL's, not ours: TRL 1.16 reads transformers' deprecated `is_gradient_checkpointing` property
# (trl/models/utils.py, around generation and checkpoint saves), which warns at every save of a run.
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

# transformers 5.23 renamed TrainingArguments.gradient_checkpointing to activation_checkpointing (the old name warns
# there, and TRL defaults it to True); 5.19-5.22, which the vLLM releases allow (docs/paper_setting.md#vllm-rollouts),
# know only the old name.
CHECKPOINTING_ARG = ("activation_checkpointing"
                     if "activation_checkpointing" in {f.name for f in dataclasses.fields(TrainingArguments)}
                     else "gradient_checkpointing")


def examples_per_step(method: DictConfig) -> int:
    """Training examples (questions) one optimiser step consumes, over all processes.

    GRPO: per_device_train_batch_size counts completions, num_generations of them per question.
    """
    examples = method.per_device_train_batch_size * method.gradient_accumulation_steps
    if method.trainer == "grpo":
        examples //= method.num_generations
    return examples * PartialState().num_processes


def batch_description(method: DictConfig) -> str:
    """What one optimiser step takes, for the console: '8 questions per optimiser step (8 examples per process x 2
    accumulation x 4 processes / 8 completions per question)'."""
    per_question = method.num_generations if method.trainer == "grpo" else 1
    processes = PartialState().num_processes
    return (f"{examples_per_step(method)} questions per optimiser step ({method.per_device_train_batch_size} examples "
            f"per process x {method.gradient_accumulation_steps} accumulation x {processes} processes"
            + (f" / {per_question} completions per question)" if per_question > 1 else ")"))


def max_steps(cfg: DictConfig) -> int:
    """method.max_steps, or, with budget.examples set, the steps that see that many training examples
    (rounded up), so methods can be compared at a matched number of examples seen."""
    if cfg.budget.examples is None:
        return cfg.method.max_steps
    return math.ceil(cfg.budget.examples / examples_per_step(cfg.method))


def common_args(cfg: DictConfig, output_dir: str, report_to: str) -> dict:
    """Keyword arguments of transformers' TrainingArguments that every method's TRL config takes."""
    method = cfg.method
    return dict(
        output_dir=output_dir,
        seed=cfg.seed,
        max_steps=max_steps(cfg),
        learning_rate=method.learning_rate,
        warmup_steps=method.warmup_steps,
        lr_scheduler_type=method.lr_scheduler_type,
        per_device_train_batch_size=method.per_device_train_batch_size,
        gradient_accumulation_steps=method.gradient_accumulation_steps,
        bf16=method.bf16,  # TRL defaults to bf16, which CPUs lack: always explicit
        **{CHECKPOINTING_ARG: method.gradient_checkpointing},  # the installed transformers' name for it
        logging_steps=method.logging_steps,
        # Checkpoints (weights, optimizer, scheduler, RNG, step) that a rerun resumes from (medvqa_rl/bookkeeping/checkpoints.py).
        save_strategy="no" if method.save_steps is None else "steps",
        save_steps=method.save_steps or 500,
        save_total_limit=method.save_total_limit,
        push_to_hub=method.push_to_hub,
        hub_model_id=method.hub_model_id,
        report_to=report_to,
        disable_tqdm=True,
        # Pinned host memory only helps copies to an accelerator; on a CPU-only machine torch declines it with a warning.
        dataloader_pin_memory=torch.accelerator.is_available(),
    )


def lora_config(method: DictConfig) -> LoraConfig | None:
    """peft's LoraConfig when method.lora.enabled, else None (full fine-tuning)."""
    lora = method.lora
    if not lora.enabled:
        return None
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules)
