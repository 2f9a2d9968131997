"""Train and test records for the configured dataset, and their TRL form."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset
from omegaconf import OmegaConf

from medvqa_rl.data import closed_vqa, pmc_vqa
from medvqa_rl.data.record_cache import cached_splits
from medvqa_rl.data.records import Records, records_dataset
from medvqa_rl.data.sources import resolve_root
from medvqa_rl.data.synthetic import make_split
from medvqa_rl.prompts import prompt_messages

# Columns that reach the reward functions as keyword arguments.
REWARD_COLUMNS = ("id", "question", "answer_label", "answer_text", "options", "question_type", "rationale")
# Real datasets: (cfg, root, skipped) -> (train, test) validated records with encoded images.
LOADERS = {"pmc_vqa": pmc_vqa.load_splits, "vqa_rad": closed_vqa.load_splits, "path_vqa": closed_vqa.load_splits,
           "slake": closed_vqa.load_splits}


def load_splits(dataset_cfg, skipped: Counter | None = None,
                cache_dir: str | Path | None = None) -> tuple[Sequence[dict], Sequence[dict]]:
    """(train, test) records in the shared schema (id, image, question, options, answer_label, ...).

    Synthetic: lists of dicts with PIL images, generated from the seed. Real datasets: validated first
    (medvqa_rl.data.validation; with dataset.on_bad_row=skip the skipped rows are counted into `skipped` as
    "<split>/<reason>"), then returned as Records, whose images stay encoded until a consumer uses them.
    With a cache_dir (and dataset.cache true) the processed splits and counts come from the record cache
    (medvqa_rl.data.record_cache), built on the first load.
    """
    if dataset_cfg.name == "synthetic":
        common = dict(seed=dataset_cfg.seed, image_size=dataset_cfg.image_size, option_order=dataset_cfg.option_order)
        return make_split("train", dataset_cfg.train_size, **common), make_split("test", dataset_cfg.test_size, **common)
    if dataset_cfg.name not in LOADERS:
        raise ValueError(f"dataset.name={dataset_cfg.name!r} has no loader yet")
    settings = OmegaConf.to_container(dataset_cfg, resolve=True)
    root = resolve_root(settings["path"], settings.get("revision"))

    def build() -> tuple[dict[str, Dataset], Counter]:
        counts = Counter()
        train, test = LOADERS[dataset_cfg.name](dataset_cfg, root, counts)
        return {"train": records_dataset(train), "test": records_dataset(test)}, counts

    if cache_dir is not None and settings.get("cache", True):
        splits, counts = cached_splits(settings, root, cache_dir, build)
    else:
        splits, counts = build()
    if skipped is not None:
        skipped.update(counts)
    return Records(splits["train"]), Records(splits["test"])


def findings_json(record: dict) -> str:
    """The image's ground truth as JSON where the dataset has it (synthetic), else "": for the rule judge.
    A string keeps one column type across datasets with and without findings."""
    return json.dumps(record["findings"]) if record.get("findings") else ""


def to_trl_dataset(records: Sequence[dict]) -> Dataset:
    """A conversational-prompt dataset with an ``image`` column, as TRL's GRPOTrainer expects."""
    return with_images(records, [{"prompt": prompt_messages(r["question"], r["options"]), **reward_columns(r)}
                                 for r in records])


def with_images(records: Sequence[dict], rows: list[dict]) -> Dataset:
    """A TRL training dataset: `rows` (the text columns, one dict per record) plus the records' images as an
    ``image`` column. Real-dataset Records lend their encoded image column as it is (nothing decoded or
    re-encoded; datasets decodes a row's image when TRL reads it); a list's PIL images (synthetic) are
    encoded by datasets."""
    if isinstance(records, Records):
        return records.with_columns(rows)
    return Dataset.from_list([row | {"image": r["image"]} for row, r in zip(rows, records, strict=True)])


def reward_columns(record: dict) -> dict:
    """The dataset columns TRL passes to the reward functions as keyword arguments."""
    return {**{k: record[k] for k in REWARD_COLUMNS}, "findings": findings_json(record)}
