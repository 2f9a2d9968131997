"""The test sets a run evaluates: the in-domain test split of its dataset, then the extra sets of eval.test_sets
(`<name>: <a dataset config>`, composed by the test_sets group or `+dataset@eval.test_sets.<name>=<option>`).

Every set is loaded (its test split only; the in-domain train split only when the run trains), validated and
cached like the in-domain one before any model is loaded, so a bad row names its file and line first. Its
metrics are recorded under test/<name>/<metric> (init/test/<name>/... before training; the in-domain keys stay
test/<metric>), its skipped rows as data/skipped/<name>/test/<reason>, its predictions in
test_sets/<name>/predictions.jsonl (init_predictions.jsonl before training).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from medvqa_rl.data.protocol_variants import VariantError, apply_variant
from medvqa_rl.data.splits import load_splits, load_test_split
from medvqa_rl.data.validation import BadRowsError

FOLDER = "test_sets"  # in the run dir: <FOLDER>/<name>/predictions.jsonl, init_predictions.jsonl
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# A name that is the first part of an in-domain metric key (test/closed/accuracy, test/accuracy/<type>, the W&B
# test/predictions and test/outcomes tables, ...) would read as one: not a test set's name.
RESERVED_NAMES = frozenset({"accuracy", "closed", "open", "format_rate", "completion_tokens", "similarity",
                            "judge_score", "perplexity", "predictions", "outcomes"})


@dataclass(frozen=True)
class TestSet:
    """One test set of a run: name None is the in-domain test split (the run's dataset)."""

    __test__ = False  # not a pytest test class, whatever its name
    name: str | None
    config: DictConfig  # its dataset config
    records: Sequence[dict]

    @property
    def prefix(self) -> str:
        """Of its metric keys: test/<prefix><metric>."""
        return "" if self.name is None else f"{self.name}/"

    def folder(self, run_dir: Path) -> Path:
        """Where its prediction files go."""
        return Path(run_dir) if self.name is None else Path(run_dir) / FOLDER / self.name

    @property
    def label(self) -> str:
        return "in-domain test split" if self.name is None else f"test set {self.name}"


def capped(set_cfg: DictConfig, cap: int | None) -> DictConfig:
    """An extra set's dataset config with at most `cap` test questions (eval.extra_test_size; None: as it is)."""
    if cap is None or (set_cfg.get("test_size") is not None and set_cfg.test_size <= cap):
        return set_cfg
    settings = OmegaConf.to_container(set_cfg, resolve=True)
    settings["test_size"] = int(cap)
    return OmegaConf.create(settings)


def extra_configs(cfg: DictConfig) -> dict[str, DictConfig]:
    """eval.test_sets: name -> dataset config, in the config's order, each with at most eval.extra_test_size test
    questions."""
    cap = cfg.eval.get("extra_test_size")
    return {name: capped(set_cfg, cap) for name, set_cfg in (cfg.eval.get("test_sets") or {}).items()}


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a test set, or None."""
    if not NAME.fullmatch(name):
        return "a test set's name is letters, digits, _ and - (it becomes the metric keys' test/<name>/)"
    if name in RESERVED_NAMES:
        return f"{name!r} is the first part of an in-domain metric key (test/{name}...); choose another name"
    return None


def without_variant(set_cfg: DictConfig) -> DictConfig:
    """A test set's dataset config without its protocol variant (medvqa_rl/data/protocol_variants.py): what loads the
    records (and keys the record cache), whatever the variant does with them."""
    if set_cfg.get("variant") is None:
        return set_cfg
    settings = OmegaConf.to_container(set_cfg, resolve=True)
    settings.pop("variant")
    return OmegaConf.create(settings)


def load_run_data(cfg: DictConfig, training: bool, skipped: Counter) -> tuple[Sequence[dict] | None, list[TestSet]]:
    """(train records, or None when the run does not train; the test sets, in-domain first), every one validated
    and non-empty. Skipped and left-out rows are counted into `skipped`: the in-domain ones as <split>/<reason>,
    an extra set's as <name>/test/<reason>. Raises BadRowsError for a bad row (on_bad_row=error) or an empty split,
    an extra set's naming its key (eval.test_sets.<name>)."""
    if training:
        train, test = load_splits(cfg.dataset, skipped, cfg.cache_dir)
    else:
        train, test = None, load_test_split(cfg.dataset, skipped, cfg.cache_dir)
    sets = [TestSet(None, cfg.dataset, test)]
    for name, set_cfg in extra_configs(cfg).items():
        counts = Counter()
        try:  # a protocol variant (blind, circular) asks the questions of the set it names another way
            records = load_test_split(without_variant(set_cfg), counts, cfg.cache_dir)
            sets.append(TestSet(name, set_cfg, apply_variant(records, set_cfg.get("variant"),
                                                             f"eval.test_sets.{name}.variant")))
        except VariantError as error:
            raise BadRowsError(str(error)) from None
        except BadRowsError as error:  # named by the set's key, its settings too (not the run's dataset.*)
            message = re.sub(r"\bdataset\.(on_bad_row|questions)\b", rf"eval.test_sets.{name}.\1", str(error))
            raise BadRowsError(f"eval.test_sets.{name}: {message}") from None
        skipped.update({f"{name}/{key}": n for key, n in counts.items()})
    return train, sets
