"""PMC-VQA (Zhang et al. 2023) in its official layout, from a local directory or the hub id xmcmic/PMC-VQA.

Layout: `train.csv`, `test.csv`, `test_clean.csv` with columns Figure_path, Question, Answer,
Choice A..D, Answer_label; choice values carry a prefix such as "A:" (stripped); images in an
`images/` folder or in `images.zip` (members matched by file name). The paper's subset is a seeded
sample of dataset.train_size / dataset.test_size rows (defaults 10,000 / 7,000), drawn before
validation, so dataset.on_bad_row=skip can leave fewer. Records carry no rationale (""): SFT and DPO
targets then hold an empty <think></think>, and the similarity metric has no reference.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from medvqa_rl.data.sources import ImageFiles
from medvqa_rl.data.validation import validate

log = logging.getLogger(__name__)

COLUMNS = ("Figure_path", "Question", "Answer", "Choice A", "Choice B", "Choice C", "Choice D", "Answer_label")
_PREFIX = re.compile(r"^\s*[A-D]\s*[:.)]\s*")


def read_split(root: Path, file_name: str, size: int, seed: int) -> list[dict]:
    """Candidate records (not yet validated) of a seeded sample of `size` rows of one CSV."""
    csv = root / file_name
    if not csv.is_file():
        raise FileNotFoundError(f"PMC-VQA split {csv} not found (dataset.path={root})")
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{csv}: missing columns {missing} (expected {list(COLUMNS)})")
    if size < len(frame):
        frame = frame.sample(n=size, random_state=seed)
    else:
        log.info("%s has %d rows, fewer than the %d asked: using all", csv.name, len(frame), size)
    return [_candidate(row, csv.name, int(index) + 2) for index, row in frame.iterrows()]  # line 1 = header


def _candidate(row, source: str, line: int) -> dict:
    options = [_PREFIX.sub("", row[f"Choice {letter}"]).strip() for letter in "ABCD"]
    question = row["Question"].strip()
    key = hashlib.sha1(f"{row['Figure_path']}\n{question}".encode()).hexdigest()[:12]
    return {
        "id": f"pmc-{key}",  # the same image and question twice is a duplicate
        "question": question,
        "options": options,
        "answer_label": row["Answer_label"].strip().upper(),
        "answer_text": _PREFIX.sub("", row["Answer"]).strip(),
        "question_type": "pmc_vqa",
        "rationale": "",
        "source": source,
        "line": line,
        "image_ref": row["Figure_path"].strip(),
    }


def load_splits(cfg, root: Path, skipped: Counter, splits=("train", "test")) -> list[list[dict]]:
    """The validated records of each of `splits` (train, test) of the dataset under root (images encoded), in
    that order; adds per-reason skip counts (prefixed train/ or test/) to `skipped`."""
    images = ImageFiles(root, folder="images", archive="images.zip")
    files = {"train": (cfg.train_file, cfg.train_size), "test": (cfg.test_file, cfg.test_size)}
    loaded = []
    for split in splits:
        file_name, size = files[split]
        records, counts = validate(read_split(root, file_name, size, cfg.seed), images, cfg.on_bad_row,
                                   cfg.get("max_image_side"))
        skipped.update({f"{split}/{reason}": n for reason, n in counts.items()})
        loaded.append(records)
    return loaded
