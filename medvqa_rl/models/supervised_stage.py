"""Teacher-forced training of a VLM on (image, prompt, target) triples with transformers' Trainer.

Used to build the tiny inits: caption pretraining (image -> report, no chat format) makes the tiny
base; a short instruction tuning on top makes the tiny instruct. Loss covers the target tokens only.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch
from transformers import Trainer, TrainingArguments

IGNORE_INDEX = -100


@dataclass
class SupervisedExample:
    image: object  # PIL image
    prompt: str  # already rendered text, with the <|image_pad|> placeholder
    target: str  # what the model must produce, its stop token included


class TargetOnlyCollator:
    """Pads a batch through the processor and masks everything but each target.

    Targets are located by token counts, never by re-finding strings: a byte-level BPE may
    tokenise a word differently inside a longer text. Right padding for training; left padding puts
    every target at the end of its row, so an evaluation can ask the model for the last logits only.
    """

    def __init__(self, processor, padding_side: str = "right"):
        self.processor, self.padding_side = processor, padding_side

    def __call__(self, examples: list[SupervisedExample]) -> dict:
        tokenizer = self.processor.tokenizer
        batch = self.processor(
            text=[e.prompt + e.target for e in examples],
            images=[[e.image] for e in examples],
            padding=True,
            padding_side=self.padding_side,
            return_tensors="pt",
        )
        labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
        width = batch["input_ids"].shape[1]
        ends = [width] * len(examples) if self.padding_side == "left" else batch["attention_mask"].sum(dim=1).tolist()
        for row, (example, end) in enumerate(zip(examples, ends)):
            n_target = len(tokenizer(example.target, add_special_tokens=False)["input_ids"])
            labels[row, end - n_target : end] = batch["input_ids"][row, end - n_target : end]
        batch["labels"] = labels
        return dict(batch)


def train_supervised(model, processor, examples: list[SupervisedExample], *, steps: int, batch_size: int,
                     learning_rate: float, seed: int, warmup_steps: int = 10) -> list[float]:
    """Trains ``model`` in place for ``steps`` optimiser steps; returns the logged training losses."""
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=warmup_steps,
            weight_decay=0.0,
            logging_steps=max(1, steps // 10),
            save_strategy="no",
            report_to="none",
            remove_unused_columns=False,
            use_cpu=not torch.cuda.is_available(),
            seed=seed,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=TargetOnlyCollator(processor))
        trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
