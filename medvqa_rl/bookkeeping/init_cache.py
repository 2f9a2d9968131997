"""The init evaluation, computed once per (checkpoint, test split, evaluation setting) and reused by every arm
that starts from the same init: a 24-arm grid evaluates its two init checkpoints twice, not 24 times.

Cached under <cache_dir>/init_eval/<key>.json (metrics and predictions). The key holds what the numbers
depend on: the checkpoint's identity (provenance.init_identity: the SHA-256 of its files, or a hub id's
resolved revision), how it is loaded (model_init), the resolved config of the test set (the run's dataset, or
one of eval.test_sets: each set is cached on its own), that data's identity and the test records' ids, the
evaluation config, the judge that scores it, the number of processes (shards batch differently), the scoring
code (provenance.SCORING_SOURCES: a parser fix must not be served old metrics) and the library versions
(generation). Any change gives another key, so it is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from medvqa_rl.judges.selection import evaluation_judge_config
from medvqa_rl.bookkeeping.provenance import PREFIX, SCORING_SOURCES, data_identity, source_digest
from medvqa_rl.bookkeeping.run_record import package_versions, write_cache_json
from medvqa_rl.cache_entries import set_aside

log = logging.getLogger(__name__)

CACHE_FOLDER = "init_eval"


def init_eval_key(cfg: DictConfig, provenance: dict, test_records, dataset: DictConfig | None = None,
                  data: str | None = None) -> str:
    """provenance: the run's (medvqa_rl/bookkeeping/provenance.py); its init and processes parts enter the key.
    dataset: the config of the test set evaluated (default: the run's, cfg.dataset), data: its identity
    (provenance.data_identity; computed when not given). The other test sets a run evaluates (eval.test_sets) stay
    out: one set's evaluation is the same whatever else the run evaluates."""
    def resolved(node):
        return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node

    dataset = cfg.dataset if dataset is None else dataset
    evaluation = {k: v for k, v in resolved(cfg.eval).items() if k not in ("progress", "test_sets", "extra_test_size")}
    judge = evaluation_judge_config(cfg)
    payload = {
        "checkpoint": provenance[PREFIX + "init"],
        "load": {k: v for k, v in resolved(cfg.model_init).items() if k not in ("name", "path")},
        "dataset": {k: v for k, v in resolved(dataset).items() if k != "cache"},
        "data": data_identity(dataset)[0] if data is None else data,
        "scoring_code": source_digest(*SCORING_SOURCES),
        "versions": {k: v for k, v in package_versions().items() if k != "medvqa_rl"},
        "test_ids": hashlib.sha256("\n".join(str(r["id"]) for r in test_records).encode()).hexdigest(),
        "eval": evaluation,
        "judge": resolved(judge),
        "processes": provenance[PREFIX + "processes"],
        "reasoning": cfg.reasoning.name,  # the prompt's format, and what every score reads as well-formed
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _path(cache_dir: str, key: str) -> Path:
    return Path(cache_dir).expanduser() / CACHE_FOLDER / f"{key}.json"


def read_cached_init_eval(cache_dir: str, key: str) -> tuple[dict, list[dict]] | None:
    """(metrics, predictions) of an earlier evaluation with this key, else None."""
    path = _path(cache_dir, key)
    try:
        cached = json.loads(path.read_text())
        return cached["metrics"], cached["predictions"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:  # cut off or garbled: set aside, recomputed
        log.warning("init-evaluation cache entry %s cannot be read (%s: %s); set aside as %s and recomputed", path,
                    type(error).__name__, error, set_aside(path))
        return None


def write_cached_init_eval(cache_dir: str, key: str, metrics: dict, predictions: list[dict]) -> None:
    """Written whole or not at all: parallel arms computing the same key just overwrite it. Best effort (a full
    cache dir warns once, naming the path)."""
    write_cache_json(_path(cache_dir, key), {"metrics": metrics, "predictions": predictions}, ensure_ascii=False)
