"""VQA-RAD and PathVQA (hub parquet layout) and SLAKE (JSON + imgs.zip or imgs/), written under tmp_path:
closed yes/no questions as two-option multiple choice, open and non-English ones counted, bad rows in
both modes, the hub path at a pinned revision, and a 1-step GRPO run on VQA-RAD's layout."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image

from medvqa_rl.data.record_cache import cache_digest
from medvqa_rl.data.splits import load_splits
from medvqa_rl.data.validation import BadRowsError
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, compose_config

# (question, answer): three closed, one open.
QA = [("Is there a fracture?", "Yes"), ("Is the liver enlarged?", "no"), ("Is this a CT scan?", "yes "),
      ("Where is the lesion?", "left lung")]


def _jpeg(seed: int) -> bytes:
    pixels = np.full((48, 64, 3), seed * 40 % 256, dtype=np.uint8)  # one flat colour per seed
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_parquet_layout(root: Path, n_train=8, n_test=4, edit=None) -> Path:
    """The hub layout of flaviagiammarino/vqa-rad and /path-vqa: data/<split>-*.parquet."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, n, offset in (("train", n_train, 0), ("test", n_test, 100)):
        rows = [{"image": {"bytes": _jpeg(offset + i), "path": f"img{offset + i}.jpg"},
                 "question": f"{QA[i % 4][0]} (case {offset + i})", "answer": QA[i % 4][1]} for i in range(n)]
        if edit:
            edit(split, rows)
        pd.DataFrame(rows).to_parquet(root / "data" / f"{split}-00000-of-00001.parquet")
    return root


def write_slake(root: Path, as_zip=True, edit=None) -> Path:
    """BoKelvin/SLAKE: train.json / test.json, images imgs/xmlab<k>/source.jpg (every file named source.jpg)."""
    root.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, offset in (("train.json", 0), ("test.json", 100)):
        items = []
        for i in range(6):
            question, answer = QA[i % 4]
            items.append({"img_name": f"xmlab{offset + i}/source.jpg", "question": f"{question} ({offset + i})",
                          "answer": answer, "q_lang": "en", "answer_type": "CLOSED" if i % 4 < 3 else "OPEN",
                          "content_type": "Abnormality" if i % 2 else "Modality"})
        items.append({**items[0], "question": "这是CT吗?", "q_lang": "zh"})
        splits[split] = items
    if edit:
        edit(splits)
    names = sorted({item["img_name"] for items in splits.values() for item in items})
    if as_zip:
        with zipfile.ZipFile(root / "imgs.zip", "w") as archive:
            for name in names:
                archive.writestr(f"imgs/{name}", _jpeg(int(name.split("/")[0][5:])))
    else:
        for name in names:
            (root / "imgs" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "imgs" / name).write_bytes(_jpeg(int(name.split("/")[0][5:])))
    for split, items in splits.items():
        (root / split).write_text(json.dumps(items, ensure_ascii=False))
    return root


def _load(dataset: str, root: Path, *overrides: str):
    skipped = Counter()
    cfg = compose_config([f"dataset={dataset}", f"dataset.path={root}", *overrides])
    return (*load_splits(cfg.dataset, skipped), skipped)


@pytest.mark.parametrize("dataset", ["vqa_rad", "path_vqa"])
def test_parquet_layout_closed_questions_become_two_options(dataset, tmp_path):
    train, test, skipped = _load(dataset, write_parquet_layout(tmp_path / dataset))
    assert (len(train), len(test)) == (6, 3)  # 8 and 4 rows, every fourth one open
    assert skipped == Counter({"train/open_question": 2, "test/open_question": 1})
    first, second = train[0], train[1]
    assert first["options"] == ["yes", "no"] and (first["answer_label"], first["answer_text"]) == ("A", "yes")
    assert (second["answer_label"], second["answer_text"]) == ("B", "no")
    assert first["id"].startswith(f"{dataset}-") and first["rationale"] == "" and first["question_type"] == "closed"
    assert first["image"].size == (64, 48) and first["image"].getpixel((0, 0))[0] == pytest.approx(0, abs=3)
    assert train[2]["image"].getpixel((0, 0))[0] == pytest.approx(80, abs=3)  # each row its own image


def test_parquet_seeded_subset(tmp_path):
    root = write_parquet_layout(tmp_path / "rad", n_train=40)
    a, _, _ = _load("vqa_rad", root, "dataset.train_size=5")
    b, _, _ = _load("vqa_rad", root, "dataset.train_size=5")
    c, _, _ = _load("vqa_rad", root, "dataset.train_size=5", "seed=1")
    assert len(a) == 5 and [r["id"] for r in a] == [r["id"] for r in b] != [r["id"] for r in c]


@pytest.mark.parametrize("as_zip", [True, False])
def test_slake_english_closed_questions_and_nested_images(as_zip, tmp_path):
    train, test, skipped = _load("slake", write_slake(tmp_path / "slake", as_zip=as_zip))
    assert (len(train), len(test)) == (5, 5)
    assert skipped == Counter({"train/open_question": 1, "train/not_english": 1, "test/open_question": 1,
                               "test/not_english": 1})
    assert {r["question_type"] for r in train} == {"modality", "abnormality"}
    # Every image is named source.jpg: each record must get its own folder's one.
    assert [round(r["image"].getpixel((0, 0))[0] / 40) for r in train] == [0, 1, 2, 4, 5]


def _corrupt_second(split, rows):
    if split == "train":
        rows[1]["image"] = {"bytes": b"not a jpeg", "path": "x.jpg"}


def _missing_second(split, rows):
    if split == "train":
        rows[1]["image"] = {"bytes": None, "path": "x.jpg"}


def _duplicate_first(split, rows):
    if split == "train":
        rows[2] = dict(rows[0])


def _empty_question(split, rows):
    if split == "train":
        rows[1]["question"] = "   "


BAD_PARQUET = {"corrupt_image": _corrupt_second, "missing_image": _missing_second, "duplicate_id": _duplicate_first,
               "empty_question": _empty_question}
BAD_LINE = {"corrupt_image": 2, "missing_image": 2, "duplicate_id": 3, "empty_question": 2}


@pytest.mark.parametrize("reason", sorted(BAD_PARQUET))
def test_parquet_bad_row_is_an_error_naming_shard_and_row(reason, tmp_path):
    root = write_parquet_layout(tmp_path / "rad", edit=BAD_PARQUET[reason])
    with pytest.raises(BadRowsError, match=f"train-00000-of-00001.parquet:{BAD_LINE[reason]}: {reason}"):
        _load("vqa_rad", root)


@pytest.mark.parametrize("reason", sorted(BAD_PARQUET))
def test_parquet_bad_row_is_skipped_and_counted(reason, tmp_path):
    root = write_parquet_layout(tmp_path / "rad", edit=BAD_PARQUET[reason])
    train, _, skipped = _load("vqa_rad", root, "dataset.on_bad_row=skip")
    assert len(train) == 5 and skipped[f"train/{reason}"] == 1


def test_slake_missing_image_names_the_json_item(tmp_path):
    def point_at_nothing(splits):
        splits["train.json"][2]["img_name"] = "xmlab999/source.jpg"

    root = write_slake(tmp_path / "slake", edit=point_at_nothing)
    names = {item["img_name"] for item in json.loads((root / "train.json").read_text())}
    assert "xmlab999/source.jpg" in names
    with zipfile.ZipFile(root / "imgs.zip") as archive:  # written for every named image: remove that one
        kept = {n: archive.read(n) for n in archive.namelist() if "xmlab999" not in n}
    with zipfile.ZipFile(root / "imgs.zip", "w") as archive:
        for name, blob in kept.items():
            archive.writestr(name, blob)
    with pytest.raises(BadRowsError, match="train.json:3: missing_image"):
        _load("slake", root)


def test_missing_split_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-\\*.parquet"):
        _load("vqa_rad", tmp_path)
    with pytest.raises(FileNotFoundError, match="train.json"):
        _load("slake", tmp_path)


def test_hub_id_at_a_pinned_revision(tmp_path, monkeypatch):
    import huggingface_hub

    root = write_parquet_layout(tmp_path / "snapshot")
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kw: calls.append(kw) or str(root))
    train, _, _ = _load("path_vqa", "flaviagiammarino/path-vqa", "dataset.revision=abc123")
    assert calls == [{"repo_id": "flaviagiammarino/path-vqa", "repo_type": "dataset", "revision": "abc123"}]
    assert len(train) == 6


def test_one_grpo_step_on_the_vqa_rad_layout(tiny_cache, tmp_path):
    root = write_parquet_layout(tmp_path / "rad", n_train=24, n_test=8)
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [f"cache_dir={tiny_cache}", "dataset=vqa_rad",
                                                    f"dataset.path={root}", "method.max_steps=1"])
    record = run(cfg, tmp_path / "run")
    assert record["train/steps"] == 1 and record["factor/dataset"] == "vqa_rad"
    assert record["data/skipped/train/open_question"] == 6 and record["data/skipped/test/open_question"] == 2
    # The run stored its processed records in the record cache under cache_dir, counts included.
    digest = cache_digest(OmegaConf.to_container(cfg.dataset, resolve=True), root)
    entry = Path(tiny_cache) / "datasets" / f"vqa_rad-{digest}"
    assert json.loads((entry / "skipped.json").read_text()) == {"test/open_question": 2, "train/open_question": 6}
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["options"] == ["yes", "no"] for r in rows)
    assert record["test/accuracy"] == 100.0 * sum(r["correct"] for r in rows) / 6
