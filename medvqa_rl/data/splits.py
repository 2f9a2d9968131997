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
from medvqa_rl.data.synthetic import is_synthetic, make_split
from medvqa_rl.data.validation import BadRowsError
from medvqa_rl.prompts import prompt_messages
from medvqa_rl.reasoning_formats import DEFAULT

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
    train, test = _load(dataset_cfg, ("train", "test"), skipped, cache_dir)
    return train, test


def load_test_split(dataset_cfg, skipped: Counter | None = None,
                    cache_dir: str | Path | None = None) -> Sequence[dict]:
    """The test records alone, as load_splits gives them (validated, cached, skips counted as "test/<reason>"):
    for an evaluation-only run and an extra test set, whose train split is neither read nor validated."""
    (test,) = _load(dataset_cfg, ("test",), skipped, cache_dir)
    return test


def _load(dataset_cfg, splits: tuple[str, ...], skipped: Counter | None, cache_dir) -> list[Sequence[dict]]:
    if is_synthetic(dataset_cfg):
        common = dict(seed=dataset_cfg.seed, image_size=dataset_cfg.image_size, option_order=dataset_cfg.option_order,
                      shift=dataset_cfg.get("shift"))
        sizes = {"train": dataset_cfg.train_size, "test": dataset_cfg.test_size}
        return [make_split(split, sizes[split], **common) for split in splits]
    if dataset_cfg.name not in LOADERS:
        raise ValueError(f"dataset.name={dataset_cfg.name!r} has no loader yet")
    settings = OmegaConf.to_container(dataset_cfg, resolve=True)
    root = resolve_root(settings["path"], settings.get("revision"))

    def build() -> tuple[dict[str, Dataset], Counter]:
        counts = Counter()
        loaded = LOADERS[dataset_cfg.name](dataset_cfg, root, counts, splits)
        for split, records in zip(splits, loaded, strict=True):
            if not records:  # an error, not a row of NaNs; raised before the cache keeps anything
                left_out = {k: n for k, n in counts.items() if k.startswith(f"{split}/")}
                raise BadRowsError(f"{dataset_cfg.name}: the {split} split holds no question (dataset.questions="
                                   f"{dataset_cfg.get('questions')}; left out or skipped: {left_out or 'none'})")
        return {split: records_dataset(records) for split, records in zip(splits, loaded, strict=True)}, counts

    if cache_dir is not None and settings.get("cache", True):
        # A test-only entry is its own: it holds no train split (the digest covers the splits it holds).
        keyed = settings if splits == ("train", "test") else {**settings, "splits": list(splits)}
        cached, counts = cached_splits(keyed, root, cache_dir, build)
    else:
        cached, counts = build()
    if skipped is not None:
        skipped.update(counts)
    return [Records(cached[split]) for split in splits]


def findings_json(record: dict) -> str:
    """The image's ground truth as JSON where the dataset has it (synthetic), else "": for the rule judge.
    A string keeps one column type across datasets with and without findings."""
    return json.dumps(record["findings"]) if record.get("findings") else ""


def to_trl_dataset(records: Sequence[dict], reasoning: str = DEFAULT) -> Dataset:
    """A conversational-prompt dataset with an ``image`` column, as TRL's GRPOTrainer expects; the prompts ask for
    the reasoning format (medvqa_rl/reasoning_formats.py)."""
    return with_images(records, [{"prompt": prompt_messages(r["question"], r["options"], reasoning), **reward_columns(r)}
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
