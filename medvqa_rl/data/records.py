"""A processed real-dataset split: a datasets.Dataset with its images encoded, read as record dicts.

Consumers (evaluation, perplexity, the SFT/DPO/GRPO dataset builders, W&B tables, the judge) index, slice
and iterate records as they do the synthetic set's lists. Here each access builds a fresh dict whose image
is opened from the stored bytes and decoded on first use; nothing decoded is kept by the split, so a split
costs its encoded size (memory-mapped when it comes from the record cache), not ~0.75 MB per 512-px image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from datasets import Dataset, Features, Image, List, Value, concatenate_datasets

from medvqa_rl.data.encoded_images import open_image

# The record schema of the real datasets; `image` holds the encoded bytes (datasets decodes them per row on
# access, as TRL reads its training rows). Explicit, so an all-open split still types `options` as strings.
FEATURES = Features({
    "id": Value("string"),
    "question": Value("string"),
    "options": List(Value("string")),
    "answer_label": Value("string"),
    "answer_text": Value("string"),
    "question_type": Value("string"),
    "rationale": Value("string"),
    "image": Image(),
})
_BATCH = 256  # rows per Arrow batch when iterating
# Rows per Arrow chunk when building: one chunk's image bytes stay far below Arrow's 2 GB per binary array.
_CHUNK = 1000


def records_dataset(records: list[dict]) -> Dataset:
    """The Dataset of validated records whose `image` is encoded bytes (medvqa_rl.data.validation.validate)."""
    if records and set(records[0]) != set(FEATURES):  # a field the schema lacks would be dropped silently
        raise ValueError(f"record fields {sorted(records[0])} differ from the split schema {sorted(FEATURES)}")
    return concatenate_datasets([_chunk(records[start:start + _CHUNK])
                                 for start in range(0, max(len(records), 1), _CHUNK)])


def _chunk(records: list[dict]) -> Dataset:
    columns = {name: [r[name] for r in records] for name in FEATURES}
    columns["image"] = [{"bytes": data, "path": None} for data in columns["image"]]
    return Dataset.from_dict(columns, features=FEATURES)


class Records(Sequence):
    """Read-only records of one split. `records[i]` is a record dict (image: a lazily decoded PIL image),
    `records[a:b]` a list of them; `dataset` is the underlying Dataset (image column encoded)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._arrow = dataset.with_format("arrow")  # rows as stored: the image as {bytes, path}, not decoded

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        if isinstance(key, slice):
            rows = range(len(self))[key]
            if rows.step == 1:
                return [_record(row) for row in self._arrow[rows.start:rows.stop].to_pylist()]
            return [self[i] for i in rows]
        return _record(self._arrow[range(len(self))[key]].to_pylist()[0])  # range: negative and out-of-range keys

    def __iter__(self) -> Iterator[dict]:
        for batch in self._arrow.iter(batch_size=_BATCH):
            yield from (_record(row) for row in batch.to_pylist())

    def __repr__(self) -> str:
        return f"Records({len(self)} rows)"

    def with_columns(self, rows: list[dict]) -> Dataset:
        """A Dataset of `rows` (one dict of columns per record) beside this split's encoded image column,
        joined without decoding or copying it: what TRL's trainers read, decoding a row's image on access."""
        if len(rows) != len(self):
            raise ValueError(f"{len(rows)} rows for a split of {len(self)} records")
        return concatenate_datasets([Dataset.from_list(rows), self.dataset.select_columns(["image"])], axis=1)


def _record(row: dict) -> dict:
    return {**row, "image": open_image(row["image"]["bytes"])}
