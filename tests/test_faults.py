"""The fault suite (issue 36): each fault a cluster user meets, replayed at the moment it strikes, and what the run
does about it. Marker `fault`; the cases that need CLI training runs are `slow` too (CI's slow tier)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medvqa_rl.bookkeeping.checkpoints import OWNER_FILE, TRAINER_DIR
from medvqa_rl.reuse.resumable import resumable_run
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, compose_config

pytestmark = pytest.mark.fault


def _history_steps(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if "loss" in row]


# ------------------------------------------------- 1. a run resumed from its final checkpoint trains nothing --

@pytest.mark.parametrize("lora", [False, True])
def test_a_run_resumed_from_its_final_checkpoint_trains_nothing_and_ends_as_the_unbroken_run(tiny_cache, tmp_path,
                                                                                            lora):
    """Killed after its last checkpoint (during the final evaluation): the rerun restores checkpoint-2 of 2
    without train() (which would run step 3) and records what the unbroken run recorded."""
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [
        "method.save_steps=2", "eval.similarity_model=null", "keep_checkpoints=true", f"cache_dir={tiny_cache}",
        f"method.lora.enabled={str(lora).lower()}", "eval.judge_score=false"])
    unbroken = run(cfg, tmp_path / "unbroken")
    killed = tmp_path / "killed"
    (killed / TRAINER_DIR).mkdir(parents=True)
    shutil.copytree(tmp_path / "unbroken" / TRAINER_DIR / "checkpoint-2", killed / TRAINER_DIR / "checkpoint-2")
    shutil.copy(tmp_path / "unbroken" / TRAINER_DIR / OWNER_FILE, killed / TRAINER_DIR)
    for name in ("init_metrics.json", "init_predictions.jsonl"):
        shutil.copy(tmp_path / "unbroken" / name, killed)
    resumed = resumable_run(run, cfg, killed)
    assert resumed["train/resumed_from_step"] == 2
    assert resumed["train/steps"] == unbroken["train/steps"] == 2
    assert _history_steps(killed) == _history_steps(tmp_path / "unbroken") == [1, 2]
    for key in ("test/accuracy", "test/format_rate", "test/completion_tokens", "train/examples"):
        assert resumed[key] == unbroken[key], key
    assert resumed["test/perplexity"] == pytest.approx(unbroken["test/perplexity"], rel=1e-5)
