"""Protocol variants of a test set (a test set's `variant`, docs/datasets.md#protocol-variants): the same questions
asked another way, to tell image use from priors and answers from option positions.

- blind: every image withheld. The image is replaced by a blank (black) image of the same size and mode, not
  dropped: the prompt keeps the same text, the same image placeholder and the same number of vision tokens, so the
  only change is that the pixels carry nothing (lmms-eval's "no image" medical tasks). Dropping the image would
  also change the prompt's template and length (a Qwen2-VL prompt without an image has no vision block), a shift
  of its own that a blind score would mix in. Ids, questions, options and answers are kept: a blind row pairs with
  the same question of the in-domain set.
- circular: each closed question asked once per rotation of its options (VLMEvalKit's CircularEval): rotation r
  moves option i to position (i - r) mod n, and the gold label with it; open questions are asked once, unchanged.
  A rotation's id is `<id>@r<r>`; its record carries circular_of (the question's id) and rotation. The evaluation
  folds the rotations back into one row per question (medvqa_rl/evaluation/circular.py).

Each record also carries image_key (a digest of the original image's pixels): the question-level intervals resample
images, not questions, where several questions share one (VQA-RAD, SLAKE), and a blank image must not merge them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

from omegaconf import DictConfig, OmegaConf
from PIL import Image

from medvqa_rl.prompts import LETTERS
from medvqa_rl.questions import is_open

VARIANTS = ("blind", "circular")
IMAGE_KEY = "image_key"
RESOLVER = "medvqa_rl.variant"  # ${medvqa_rl.variant:<variant>}: the run's dataset config with that variant


def register_resolver() -> None:
    """${medvqa_rl.variant:blind}: the run's dataset config (dataset.*, as overridden) plus variant: blind, so a
    protocol test set follows every dataset.* override (test_size, path, questions, ...) of the run it belongs to."""
    OmegaConf.register_new_resolver(RESOLVER, variant_of_dataset, replace=True)


def variant_of_dataset(variant: str, *, _root_: DictConfig) -> DictConfig:
    return OmegaConf.create({**OmegaConf.to_container(_root_.dataset, resolve=True), "variant": variant})


class VariantError(ValueError):
    """A variant that cannot apply to its test set; the message names the key."""


def image_key(image) -> str:
    """A digest of an image's pixels (mode, size and bytes), 12 hex digits: one per distinct image."""
    digest = hashlib.sha256(f"{image.mode} {image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()[:12]


def record_image_key(record: dict) -> str | None:
    """The record's image_key (a variant's, kept from the original image), else its image's digest; None without
    an image."""
    if record.get(IMAGE_KEY):
        return record[IMAGE_KEY]
    return image_key(record["image"]) if record.get("image") is not None else None


def blank_like(image) -> Image.Image:
    """A black image of `image`'s size and mode."""
    return Image.new(image.mode, image.size)


def blind_record(record: dict) -> dict:
    """The record with its image withheld (blank_like), image_key kept from the original."""
    return {**record, IMAGE_KEY: record_image_key(record), "image": blank_like(record["image"])}


def rotated_record(record: dict, rotation: int) -> dict:
    """The record with its options rotated left by `rotation` (option i at position (i - rotation) mod n), its
    answer_label moved with the gold option; id `<id>@r<rotation>`, circular_of and rotation added. Rotation 0 is the
    question as it was (id too). An open question is returned as it is."""
    if is_open(record):
        return {**record, "circular_of": record["id"], "rotation": 0}
    options = list(record["options"])
    n = len(options)
    rotation %= n
    gold = LETTERS.index(record["answer_label"].strip().upper())
    return {**record, "options": options[rotation:] + options[:rotation],
            "answer_label": LETTERS[(gold - rotation) % n],
            "id": record["id"] if rotation == 0 else f"{record['id']}@r{rotation}",
            "circular_of": record["id"], "rotation": rotation}


class VariantRecords(Sequence):
    """A test set's records as a variant asks them: entry j is transform(base[index[j][0]], index[j][1]), built on
    access (a real dataset's images stay encoded until used); a slice is a list."""

    def __init__(self, base: Sequence[dict], index: list[tuple[int, int]], transform: Callable[[dict, int], dict]):
        self.base, self.index, self.transform = base, index, transform

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self[j] for j in range(len(self))[key]]
        i, part = self.index[key]
        return self.transform(self.base[i], part)

    def __iter__(self) -> Iterator[dict]:
        return (self[j] for j in range(len(self)))

    def __repr__(self) -> str:
        return f"VariantRecords({len(self)} rows of {len(self.base)})"


def apply_variant(records: Sequence[dict], variant: str | None, key: str) -> Sequence[dict]:
    """`records` as `variant` asks them (None: as they are). key: the variant's config key, named by the errors
    (a blind set whose records have no image; a circular set with no closed question)."""
    if variant is None:
        return records
    if variant not in VARIANTS:
        raise VariantError(f"{key} must be null or one of {VARIANTS}, got {variant!r}")
    if variant == "blind":
        missing = [r["id"] for r in records if r.get("image") is None]
        if missing:
            raise VariantError(f"{key}=blind: {len(missing)} question(s) have no image to withhold (first: "
                               f"{missing[0]}); a blind set needs a dataset with images")
        return VariantRecords(records, [(i, 0) for i in range(len(records))], lambda r, _: blind_record(r))
    sizes = [1 if is_open(r) else len(r["options"]) for r in records]
    if all(is_open(r) for r in records):
        raise VariantError(f"{key}=circular: the test set holds open questions only (no options to rotate); "
                           "use a set with closed questions (dataset.questions=closed or all)")
    index = [(i, r) for i, n in enumerate(sizes) for r in range(n)]
    return VariantRecords(records, index, rotated_record)


def config_variant_problem(dataset_cfg, key: str) -> str | None:
    """Why a test set's config cannot take its variant, known before loading (key: its config key, e.g.
    eval.test_sets.circular), or None."""
    variant = dataset_cfg.get("variant")
    if variant is None:
        return None
    if variant not in VARIANTS:
        return f"{key}.variant must be null or one of {VARIANTS}, got {variant!r}"
    if variant == "circular" and dataset_cfg.get("questions") == "open":
        return (f"{key}.variant=circular: {key}.questions=open loads open questions only (no options to rotate; under test_sets=protocol it is the run's dataset.questions); "
                f"set {key}.questions=closed or all")
    if variant == "blind" and dataset_cfg.get("images") is False:
        return f"{key}.variant=blind: {key}.images is false (the dataset has no images to withhold)"
    return None
