"""Supervised fine-tuning baselines (LoRA or full) with TRL's SFTTrainer on the GRPO prompts.

Target: the reference rationale and answer (the letter; an open question's answer text) in the same
<think>/<answer> format that GRPO rewards, as the assistant turn; the loss covers the completion only
(TRL's prompt-completion default).
"""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset
from omegaconf import DictConfig
from trl import SFTConfig, SFTTrainer

from medvqa_rl.data.splits import with_images
from medvqa_rl.prompts import prompt_messages, reference_response
from medvqa_rl.reasoning_formats import DEFAULT
from medvqa_rl.training.common import common_args, lora_config


def to_sft_dataset(records: Sequence[dict], reasoning: str = DEFAULT) -> Dataset:
    """Prompt and reference completion in the reasoning format (medvqa_rl/reasoning_formats.py)."""
    return with_images(records, [
        {
            "prompt": prompt_messages(r["question"], r["options"], reasoning),
            "completion": [{"role": "assistant", "content": reference_response(r, reasoning)}],
        }
        for r in records
    ])


def build_sft_trainer(cfg: DictConfig, model, processor, train_records: Sequence[dict], output_dir: str,
                      report_to: str) -> SFTTrainer:
    args = SFTConfig(**common_args(cfg, output_dir, report_to), completion_only_loss=True, max_length=None)
    return SFTTrainer(model=model, args=args, train_dataset=to_sft_dataset(train_records, cfg.reasoning.name),
                      processing_class=processor,
                      peft_config=lora_config(cfg.method))
