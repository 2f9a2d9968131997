"""`python -m medvqa_rl` end to end on a tiny budget: the run record, determinism, W&B offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medvqa_rl.factors import RECORDED_GROUPS
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, compose_config

GROUPS = RECORDED_GROUPS


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_run_writes_the_record(small_cfg, tmp_path):
    returned = run(small_cfg, tmp_path / "run")
    metrics = _metrics(tmp_path / "run")
    assert metrics == json.loads(json.dumps(returned))
    for key in ("test/accuracy", "init/test/accuracy", "test/format_rate", "init/test/format_rate",
                "test/completion_tokens", "seed", "wall_time_s", "version/trl", "version/torch"):
        assert key in metrics, key
    for key in ("test/accuracy", "init/test/accuracy", "test/format_rate"):
        assert 0.0 <= metrics[key] <= 100.0
    assert {metrics[f"factor/{g}"] for g in GROUPS} >= {"instruct", "grpo", "synthetic", "accuracy", "none"}
    assert metrics["train/steps"] == 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == small_cfg.dataset.test_size
    assert {"id", "question", "options", "completion", "parsed_answer", "correct"} <= rows[0].keys()
    # The headline number is exactly the share of correct prediction rows.
    assert metrics["test/accuracy"] == 100.0 * sum(r["correct"] for r in rows) / len(rows)


def test_same_seed_same_metrics(small_cfg, tmp_path):
    first = run(small_cfg, tmp_path / "a")
    second = run(small_cfg, tmp_path / "b")
    drop = {"wall_time_s"}
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}
    assert (tmp_path / "a" / "predictions.jsonl").read_text() == (tmp_path / "b" / "predictions.jsonl").read_text()


@pytest.mark.slow  # a CLI/multirun end-to-end run: the slow tier
def test_cli_with_wandb_offline(tiny_cache, tmp_path):
    """The console entry point: Hydra's record, our record, and an offline W&B run beside them."""
    run_dir = tmp_path / "cli_run"
    overrides = SMALL_TINY + [o for o in SMALL_RUN if not o.startswith("wandb.")]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "medvqa_rl", *overrides, "wandb.mode=offline", f"cache_dir={tiny_cache}",
         f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert "test/accuracy" in _metrics(run_dir)
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert offline_runs, list(run_dir.iterdir())
    assert compose_config().wandb.mode == "offline"  # the default writes locally, needs no server
