"""VQA-RAD, PathVQA and SLAKE: closed yes/no questions as two-option multiple choice, open ones as free text.

These sets pair an image and a question with a free-text answer. A question answered "yes" or "no"
becomes options ["yes", "no"] (A = yes, B = no: one fixed order, as the synthetic set keeps one
order per question type) with the label of its answer. Any other answer makes an open question:
options [], label "", answer_text = the answer as the dataset gives it (stripped), scored by normalised
exact match and token F1 (medvqa_rl/rewards/open_answer.py). dataset.questions picks closed (default),
open or all; the questions it does not load are counted per split as `open_question` /
`closed_question` (SLAKE's non-English questions as `not_english`) into data/skipped/<split>/<reason>
of metrics.json, never dropped silently.

Layouts, from a local directory or a hub dataset id (pinned with dataset.revision):
- VQA-RAD (flaviagiammarino/vqa-rad), PathVQA (flaviagiammarino/path-vqa): the hub's parquet shards
  `data/<split>-*.parquet`, columns image ({bytes, path}), question, answer.
- SLAKE (BoKelvin/SLAKE): `train.json`, `validate.json`, `test.json` (img_name, question, answer,
  q_lang, answer_type, content_type, ...), images under `imgs/` or in `imgs.zip`.
Rows are then validated like PMC-VQA's (medvqa_rl/data/validation.py); "line" is the 1-based row of
the parquet shard or item of the JSON list. Records carry no rationale ("").
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
from collections import Counter
from pathlib import Path

import pandas as pd

from medvqa_rl.questions import left_out_reason, loads
from medvqa_rl.data.sources import ImageFiles
from medvqa_rl.data.validation import normalise, validate

log = logging.getLogger(__name__)

YES_NO = ("yes", "no")


def candidate(dataset: str, question: str, answer: str, image_ref: str, image_key: str, question_type: str | None,
              source: str, line: int) -> dict:
    """A candidate record: closed (two options) for a yes/no answer, else open. question_type None: "closed"
    or "open" (the parquet sets have no other type). The id hashes the image's identity (image_key) and
    the question: the same image and question twice is a duplicate."""
    normalised = normalise(answer)
    closed = normalised in YES_NO
    key = hashlib.sha1(f"{image_key}\n{question.strip()}".encode()).hexdigest()[:12]
    return {
        "id": f"{dataset}-{key}",
        "question": question.strip(),
        "options": list(YES_NO) if closed else [],
        "answer_label": "AB"[YES_NO.index(normalised)] if closed else "",
        "answer_text": normalised if closed else answer.strip(),
        "question_type": question_type or ("closed" if closed else "open"),
        "rationale": "",
        "source": source,
        "line": line,
        "image_ref": image_ref,
    }


def _subset(candidates: list[dict], size: int | None, seed: int) -> list[dict]:
    """A seeded sample of `size` candidates (all of them when size is null or larger), in file order."""
    if size is None or size >= len(candidates):
        return candidates
    keep = sorted(random.Random(seed).sample(range(len(candidates)), size))
    return [candidates[i] for i in keep]


class ParquetImages:
    """Images stored in the parquet rows themselves ({bytes, path}), opened by `<shard>#<row>`."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes | None] = {}

    def __call__(self, ref: str):
        blob = self.blobs.get(ref)
        if not blob:
            raise FileNotFoundError(ref)
        return io.BytesIO(blob)


def read_parquet_split(root: Path, dataset: str, split: str, questions: str, images: ParquetImages,
                       left_out: Counter) -> list[dict]:
    shards = sorted((root / "data").glob(f"{split}-*.parquet")) or sorted(root.glob(f"{split}-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{dataset}: no parquet shard {split}-*.parquet under {root / 'data'} or {root}")
    candidates = []
    for shard in shards:
        frame = pd.read_parquet(shard)
        missing = [c for c in ("image", "question", "answer") if c not in frame.columns]
        if missing:
            raise ValueError(f"{shard}: missing columns {missing} (expected image, question, answer)")
        for row_number, row in enumerate(frame.itertuples(index=False), start=1):
            ref = f"{shard.name}#{row_number}"
            blob = row.image.get("bytes") if isinstance(row.image, dict) else None
            image_key = hashlib.sha1(blob).hexdigest() if blob else ref  # the image itself, wherever it sits
            answer = "" if pd.isna(row.answer) else str(row.answer)  # a missing answer is empty, not "None"
            record = candidate(dataset, str(row.question), answer, ref, image_key, None, shard.name, row_number)
            if not loads(record, questions):
                left_out[left_out_reason(record)] += 1
                continue
            images.blobs[ref] = blob  # kept rows only
            candidates.append(record)
    return candidates


def read_slake_split(root: Path, file_name: str, questions: str, left_out: Counter) -> list[dict]:
    path = root / file_name
    if not path.is_file():
        raise FileNotFoundError(f"SLAKE split {path} not found (dataset.path={root})")
    candidates = []
    for item_number, item in enumerate(json.loads(path.read_text(encoding="utf-8")), start=1):
        if item.get("q_lang", "en") != "en":
            left_out["not_english"] += 1
            continue
        question_type = normalise(item.get("content_type") or "closed")
        # Closed means a yes/no answer, as for the parquet sets: SLAKE's answer_type CLOSED also marks
        # either-or questions ("Which is bigger, ...?"), whose answer is free text here.
        answer = "" if item.get("answer") is None else str(item["answer"])
        record = candidate("slake", str(item["question"]), answer, str(item["img_name"]),
                           str(item["img_name"]), question_type, file_name, item_number)
        if loads(record, questions):
            candidates.append(record)
        else:
            left_out[left_out_reason(record)] += 1
    return candidates


def load_splits(cfg, root: Path, skipped: Counter, splits=("train", "test")) -> list[list[dict]]:
    """The validated records (images encoded) of each of `splits` (train, test) of dataset=vqa_rad|path_vqa|slake
    under root, in that order; left-out and skipped rows are counted into `skipped` as <split>/<reason>."""
    parquet_images = ParquetImages()
    folder_images = ImageFiles(root, folder="imgs", archive="imgs.zip") if cfg.name == "slake" else None
    sources = {"train": (cfg.train_split, cfg.train_size), "test": (cfg.test_split, cfg.test_size)}
    loaded = []
    for split in splits:
        source, size = sources[split]
        left_out = Counter()
        if cfg.name == "slake":
            candidates, images = read_slake_split(root, source, cfg.questions, left_out), folder_images
        else:
            candidates = read_parquet_split(root, cfg.name, source, cfg.questions, parquet_images, left_out)
            images = parquet_images
        records, bad = validate(_subset(candidates, size, cfg.seed), images, cfg.on_bad_row, cfg.get("max_image_side"))
        log.info("%s %s: %d %s questions kept; left out %s", cfg.name, split, len(records), cfg.questions,
                 dict(left_out))
        skipped.update({f"{split}/{reason}": n for reason, n in (left_out + bad).items()})
        loaded.append(records)
    return loaded
