"""Train and test records for the configured dataset, and their TRL form."""

from __future__ import annotations

import json
from collections import Counter

from datasets import Dataset

from medvqa_rl.data import closed_vqa, pmc_vqa
from medvqa_rl.data.synthetic import make_split
from medvqa_rl.prompts import prompt_messages

# Columns that reach the reward functions as keyword arguments.
REWARD_COLUMNS = ("id", "question", "answer_label", "answer_text", "options", "question_type", "rationale")


def load_splits(dataset_cfg, skipped: Counter | None = None) -> tuple[list[dict], list[dict]]:
    """(train, test) records in the shared schema (id, image, question, options, answer_label, ...).

    Real datasets are validated first (medvqa_rl.data.validation); with dataset.on_bad_row=skip the
    skipped rows are counted into `skipped` as "<split>/<reason>".
    """
    if dataset_cfg.name == "synthetic":
        common = dict(seed=dataset_cfg.seed, image_size=dataset_cfg.image_size, option_order=dataset_cfg.option_order)
        return make_split("train", dataset_cfg.train_size, **common), make_split("test", dataset_cfg.test_size, **common)
    if dataset_cfg.name == "pmc_vqa":
        return pmc_vqa.load_splits(dataset_cfg, skipped)
    if dataset_cfg.name in ("vqa_rad", "path_vqa", "slake"):
        return closed_vqa.load_splits(dataset_cfg, skipped)
    raise ValueError(f"dataset.name={dataset_cfg.name!r} has no loader yet")


def findings_json(record: dict) -> str:
    """The image's ground truth as JSON where the dataset has it (synthetic), else "": for the rule judge.
    A string keeps one column type across datasets with and without findings."""
    return json.dumps(record["findings"]) if record.get("findings") else ""


def to_trl_dataset(records: list[dict]) -> Dataset:
    """A conversational-prompt dataset with an ``image`` column, as TRL's GRPOTrainer expects."""
    rows = [
        {
            "prompt": prompt_messages(r["question"], r["options"]),
            "image": r["image"],
            **reward_columns(r),
        }
        for r in records
    ]
    return Dataset.from_list(rows)


def reward_columns(record: dict) -> dict:
    """The dataset columns TRL passes to the reward functions as keyword arguments."""
    return {**{k: record[k] for k in REWARD_COLUMNS}, "findings": findings_json(record)}
