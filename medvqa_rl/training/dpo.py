"""The DPO baseline with TRL's DPOTrainer on the GRPO prompts.

Pairs (one per training question): chosen = the reference rationale and the gold answer; rejected = the
same rationale with the gold answer's text replaced by a wrong option's text, and that option's letter
(an open question: another question's answer text; see medvqa_rl.training.preferences). Both in the
<think>/<answer> format.
"""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset
from omegaconf import DictConfig
from trl import DPOConfig, DPOTrainer

from medvqa_rl.training.preferences import rejected_completions
from medvqa_rl.data.splits import with_images
from medvqa_rl.prompts import prompt_messages, reference_response
from medvqa_rl.reasoning_formats import DEFAULT
from medvqa_rl.training.common import common_args, lora_config


def to_dpo_dataset(records: Sequence[dict], seed: int, reasoning: str = DEFAULT) -> Dataset:
    """Prompt, chosen and rejected turns in the reasoning format (medvqa_rl/reasoning_formats.py)."""
    return with_images(records, [
        {
            "prompt": prompt_messages(r["question"], r["options"], reasoning),
            "chosen": [{"role": "assistant", "content": reference_response(r, reasoning)}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
        for r, rejected in zip(records, rejected_completions(records, seed, reasoning), strict=True)
    ])


def build_dpo_trainer(cfg: DictConfig, model, processor, train_records: Sequence[dict], output_dir: str,
                      report_to: str) -> DPOTrainer:
    args = DPOConfig(**common_args(cfg, output_dir, report_to), beta=cfg.method.beta, loss_type=["sigmoid"],
                     max_length=None)
    # ref_model=None: TRL uses a frozen copy of the init (or the adapter-free base under LoRA).
    return DPOTrainer(model=model, args=args, train_dataset=to_dpo_dataset(train_records, cfg.seed, cfg.reasoning.name),
                      processing_class=processor, peft_config=lora_config(cfg.method))
