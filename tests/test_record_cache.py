"""Real-dataset records keep their images encoded, and the processed splits are cached on disk: what is
stored, the decoded pixels, cache hits (no validation, same records and counts), what misses, and that a
failing or killed build leaves no entry. Files in the real layouts come from the loaders' tests."""

from __future__ import annotations

import io
import os
import threading
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from medvqa_rl.data import record_cache, splits
from medvqa_rl.data.records import Records
from medvqa_rl.data.splits import load_splits, to_trl_dataset
from medvqa_rl.data.validation import BadRowsError
from medvqa_rl.training.dpo import to_dpo_dataset
from medvqa_rl.training.sft import to_sft_dataset

from .conftest import compose_config
from .test_closed_vqa import write_parquet_layout, write_slake
from .test_pmc_vqa import MISSING, write_pmc_vqa

FIRST = "PMC0000_Fig1.jpg"  # train row 0's image: 80x48, as write_pmc_vqa writes every third one


def _cfg(root, *overrides, dataset="pmc_vqa"):
    return compose_config([f"dataset={dataset}", f"dataset.path={root}", *overrides])


def _load(root, cache, *overrides, dataset="pmc_vqa"):
    skipped = Counter()
    train, test = load_splits(_cfg(root, *overrides, dataset=dataset).dataset, skipped, cache)
    return train, test, skipped


def _stored(records: Records) -> list[bytes]:
    """The image bytes as the split's Arrow table holds them."""
    return [cell["bytes"] for cell in records.dataset.data.column("image").to_pylist()]


def _pixels(image) -> np.ndarray:
    return np.asarray(image)


def _entries(cache: Path) -> list[str]:
    folder = cache / "datasets"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


class CountBuilds:
    """Wraps a dataset's loader in splits.LOADERS: how often the files were read and validated."""

    def __init__(self, monkeypatch, name="pmc_vqa"):
        self.calls, self.loader = 0, splits.LOADERS[name]
        monkeypatch.setitem(splits.LOADERS, name, self)

    def __call__(self, *args):
        self.calls += 1
        return self.loader(*args)


# ------------------------------------------------------------------------------ encoded images --

def test_images_stay_encoded_and_decode_to_the_validated_pixels(tmp_path):
    root = write_pmc_vqa(tmp_path / "pmc")
    gray = root / "images" / "PMC0001_Fig1.jpg"  # 64x64: fits 64 px, but not RGB
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)).save(gray, format="JPEG")
    train, _, _ = _load(root, None, "dataset.max_image_side=64")

    assert isinstance(train, Records) and isinstance(train.dataset.features["image"], datasets.Image)
    stored = _stored(train)
    # An RGB image within the limit keeps the file's own bytes (no re-encoding); a shrunk or converted one
    # is a lossless PNG of the processed pixels.
    assert stored[2] == (root / "images" / "PMC0002_Fig1.jpg").read_bytes()
    assert stored[0].startswith(b"\x89PNG") and stored[1].startswith(b"\x89PNG")
    for index, name in ((0, FIRST), (1, gray.name), (2, "PMC0002_Fig1.jpg")):
        with Image.open(root / "images" / name) as original:
            expected = original.convert("RGB")  # what validation used to keep decoded
        expected.thumbnail((64, 64))
        image = train[index]["image"]
        assert image.mode == "RGB" and image.size == expected.size
        assert np.array_equal(_pixels(image), _pixels(expected))
    assert train[0]["image"].size == (64, 38)  # 80x48 shrunk, aspect kept
    assert train[0]["image"] is not train[0]["image"]  # a fresh image per access: the split keeps none


def test_an_exif_orientation_is_baked_out_so_every_reader_sees_the_same_pixels(tmp_path):
    """datasets' Image() decoding (what TRL trains on) applies an EXIF orientation; validation and the
    evaluation do not. A stored image carries none, so both see the same pixels."""
    root = write_pmc_vqa(tmp_path / "pmc")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "images" / FIRST, format="JPEG", exif=exif.tobytes())
    train, _, _ = _load(root, None)
    assert _stored(train)[0].startswith(b"\x89PNG") and train[0]["image"].size == (64, 48)
    trained_on = to_trl_dataset(train)[0]["image"]
    assert np.array_equal(_pixels(trained_on), _pixels(train[0]["image"]))


def test_records_index_slice_and_iterate_like_a_list(tmp_path):
    train, _, _ = _load(write_pmc_vqa(tmp_path / "pmc"), None)
    ids = [r["id"] for r in train]
    assert len(ids) == len(train) == 12 and len(set(ids)) == 12
    assert [r["id"] for r in train[2:5]] == ids[2:5] and [r["id"] for r in train[::5]] == ids[::5]
    assert train[-1]["id"] == ids[-1] and [r["id"] for r in train[10:99]] == ids[10:]
    with pytest.raises(IndexError):
        train[12]
    assert set(train[0]) == {"id", "question", "options", "answer_label", "answer_text", "question_type",
                             "rationale", "image"}


def test_training_datasets_lend_the_encoded_image_column(tmp_path):
    """TRL's GRPO, SFT and DPO datasets get the split's image bytes as they are, memory-mapped from the
    cache, not images decoded and re-encoded; each row still decodes to the record's image."""
    train, _, _ = _load(write_pmc_vqa(tmp_path / "pmc"), tmp_path / "cache")
    for dataset in (to_trl_dataset(train), to_sft_dataset(train), to_dpo_dataset(train, seed=0)):
        assert [c["bytes"] for c in dataset.data.column("image").to_pylist()] == _stored(train)
        assert dataset.cache_files and all(str(tmp_path / "cache") in f["filename"] for f in dataset.cache_files)
        assert np.array_equal(_pixels(dataset[3]["image"]), _pixels(train[3]["image"]))
    grpo = to_trl_dataset(train)
    assert grpo[3]["id"] == train[3]["id"] and grpo[3]["answer_label"] == train[3]["answer_label"]
    assert grpo[3]["findings"] == "" and grpo[3]["prompt"][0]["content"].startswith(train[3]["question"])


# ------------------------------------------------------------------------------- cache hits --

# (dataset, writer, overrides): each skips or leaves out rows, so the counts are checked too.
LAYOUTS = {
    "pmc_vqa": (lambda path: write_pmc_vqa(path, edit=lambda rows: rows["train.csv"][3].update(Figure_path=MISSING)),
                ("dataset.on_bad_row=skip",)),
    "vqa_rad": (write_parquet_layout, ()),
    "slake": (write_slake, ()),
}


@pytest.mark.parametrize("dataset", LAYOUTS)
def test_second_load_comes_from_the_cache_with_the_same_records_and_counts(dataset, tmp_path, monkeypatch):
    write, overrides = LAYOUTS[dataset]
    root, cache = write(tmp_path / dataset), tmp_path / "cache"
    first_train, first_test, first_skipped = _load(root, cache, *overrides, dataset=dataset)
    assert first_skipped and len(_entries(cache)) == 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("the files were read or validated again")

    for name in splits.LOADERS:
        monkeypatch.setitem(splits.LOADERS, name, must_not_run)
    monkeypatch.setattr(Image, "open", must_not_run)  # no image is opened either: only bytes are mapped
    train, test, skipped = _load(root, cache, *overrides, dataset=dataset)
    monkeypatch.undo()

    assert skipped == first_skipped
    assert train.dataset.cache_files and all(str(cache) in f["filename"] for f in train.dataset.cache_files)
    for before, after in ((first_train, train), (first_test, test)):
        assert len(after) == len(before) and _stored(after) == _stored(before)
        for old, new in zip(before, after, strict=True):
            assert {k: v for k, v in new.items() if k != "image"} == {k: v for k, v in old.items() if k != "image"}
            assert np.array_equal(_pixels(new["image"]), _pixels(old["image"]))


def _touch(root: Path, name: str) -> None:
    stat = (root / name).stat()
    os.utime(root / name, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def _rewrite_image(root: Path) -> None:
    path = root / "images" / FIRST
    data = path.read_bytes()
    buffer = io.BytesIO()
    Image.new("RGB", (80, 48), "white").save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # coarse clocks
    assert buffer.getvalue() != data


CHANGES = {
    "touch the train CSV": (lambda root: _touch(root, "train.csv"), ()),
    "rewrite an image": (_rewrite_image, ()),
    "add a file": (lambda root: (root / "images" / "new.jpg").write_bytes(b"x"), ()),
    "max_image_side": (None, ("dataset.max_image_side=32",)),
    "train_size": (None, ("dataset.train_size=5",)),
    "seed": (None, ("seed=1",)),
    "on_bad_row": (None, ("dataset.on_bad_row=skip",)),
    "test_file": (None, ("dataset.test_file=test_clean.csv",)),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_source_or_setting_misses_the_cache(change, tmp_path, monkeypatch):
    root, cache = write_pmc_vqa(tmp_path / "pmc"), tmp_path / "cache"
    builds = CountBuilds(monkeypatch)
    first, _, _ = _load(root, cache)
    _load(root, cache)
    assert builds.calls == 1
    edit, overrides = CHANGES[change]
    if edit:
        edit(root)
    train, _, _ = _load(root, cache, *overrides)
    assert builds.calls == 2 and len(_entries(cache)) == 2
    if change == "rewrite an image":
        assert _pixels(train[0]["image"]).min() > 240 and _pixels(first[0]["image"]).min() < 240


def test_a_new_loader_version_misses_the_cache(tmp_path, monkeypatch):
    root, cache = write_pmc_vqa(tmp_path / "pmc"), tmp_path / "cache"
    builds = CountBuilds(monkeypatch)
    _load(root, cache)
    monkeypatch.setattr(record_cache, "LOADER_VERSION", record_cache.LOADER_VERSION + 1)
    _load(root, cache)
    assert builds.calls == 2


def test_the_cache_switch_does_not_change_the_digest_and_off_writes_nothing(tmp_path, monkeypatch):
    root, cache = write_pmc_vqa(tmp_path / "pmc"), tmp_path / "cache"
    builds = CountBuilds(monkeypatch)
    off, _, _ = _load(root, cache, "dataset.cache=false")
    assert builds.calls == 1 and _entries(cache) == [] and not off.dataset.cache_files  # held in memory
    _load(root, cache)
    _load(root, cache, "dataset.cache=true")
    assert builds.calls == 2 and len(_entries(cache)) == 1


def test_the_cache_switch_is_not_part_of_the_run_fingerprint(tmp_path):
    from medvqa_rl.reuse.resumable import config_fingerprint

    on, off = (compose_config(["dataset=pmc_vqa", f"dataset.cache={v}"]) for v in ("true", "false"))
    assert config_fingerprint(on) == config_fingerprint(off)
    assert config_fingerprint(on) != config_fingerprint(compose_config(["dataset=pmc_vqa", "dataset.max_image_side=64"]))


def test_splits_larger_than_one_arrow_chunk(tmp_path, monkeypatch):
    from medvqa_rl.data import records

    monkeypatch.setattr(records, "_CHUNK", 5)  # 12 train rows: chunks of 5, 5, 2
    root = write_pmc_vqa(tmp_path / "pmc")
    chunked, _, _ = _load(root, tmp_path / "cache")
    monkeypatch.undo()
    whole, _, _ = _load(root, None)
    assert [r["id"] for r in chunked] == [r["id"] for r in whole] and _stored(chunked) == _stored(whole)


# ------------------------------------------------------------------------------ failed builds --

def test_a_corrupt_image_still_errors_with_file_and_line_and_leaves_no_entry(tmp_path, monkeypatch):
    root, cache = write_pmc_vqa(tmp_path / "pmc"), tmp_path / "cache"
    (root / "images" / "PMC0003_Fig1.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(BadRowsError, match=r"train\.csv:5: corrupt_image"):
        _load(root, cache)
    assert _entries(cache) == [] and not [p for p in (cache / "datasets").iterdir() if "partial" in p.name]
    with pytest.raises(BadRowsError, match=r"train\.csv:5: corrupt_image"):  # still validated, not cached
        _load(root, cache)
    _, _, skipped = _load(root, cache, "dataset.on_bad_row=skip")
    assert skipped == {"train/corrupt_image": 1} and len(_entries(cache)) == 1


def test_a_build_killed_while_writing_leaves_no_entry(tmp_path, monkeypatch):
    from datasets import DatasetDict
    from omegaconf import OmegaConf

    root, cache = write_pmc_vqa(tmp_path / "pmc"), tmp_path / "cache"
    digest = record_cache.cache_digest(OmegaConf.to_container(_cfg(root).dataset, resolve=True), root)
    save = DatasetDict.save_to_disk

    def killed(self, path, **kwargs):
        save(self, path, **kwargs)
        raise KeyboardInterrupt  # after the splits are written, before skipped.json and the rename

    monkeypatch.setattr(DatasetDict, "save_to_disk", killed)
    with pytest.raises(KeyboardInterrupt):
        _load(root, cache)
    assert [p.name for p in (cache / "datasets").iterdir()] == [f"pmc_vqa-{digest}.lock"]
    monkeypatch.undo()
    # The scratch folder of a build killed outright (SIGKILL: no cleanup ran) is removed by the next build.
    stale = cache / "datasets" / f".pmc_vqa-{digest}.partial-dead"
    (stale / "train").mkdir(parents=True)
    builds = CountBuilds(monkeypatch)
    train, _, _ = _load(root, cache)
    assert builds.calls == 1 and len(train) == 12 and not stale.exists()
    assert _entries(cache) == [f"pmc_vqa-{digest}"]


def test_parallel_loads_build_once(tmp_path, monkeypatch):
    """Sweep jobs starting together: one builds under the lock, the others wait and read its entry."""
    root, cache = write_pmc_vqa(tmp_path / "pmc"), tmp_path / "cache"
    builds = CountBuilds(monkeypatch)
    dataset_cfg = _cfg(root).dataset  # composed once: Hydra's compose is not thread-safe
    results, errors = [], []

    def load():
        try:
            results.append(load_splits(dataset_cfg, Counter(), cache))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and builds.calls == 1 and len(_entries(cache)) == 1
    assert all([r["id"] for r in train] == [r["id"] for r in results[0][0]] for train, _ in results)
