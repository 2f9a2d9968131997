"""The W&B side of a real sweep, as wandb itself wrote it offline, gives the same tables as the local records:
every arm, the shared reference arm copied from another sweep included."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.__main__ import main as analysis_main
from analysis.records import scan_wandb_runs
from analysis.wandb_offline import OfflineApi
from medvqa_rl.reuse.resumable import resumable_run
from medvqa_rl.run import run

from .conftest import ONE_STEP_RUN, SMALL_TINY, compose_config

STUDY_FILES = ("bias.csv", "bias.md", "bias.tex", "bias_paired.csv", "bias_paired.md", "bias_questions.csv",
               "bias_questions.md", "length.csv", "length.md")


def _sweep_point(tiny_cache: str, root: Path, sweep: str, *overrides: str) -> dict:
    cfg = compose_config(SMALL_TINY + ONE_STEP_RUN + [
        f"sweep={sweep}", f"sweep.root={root}", f"cache_dir={tiny_cache}", "wandb.mode=offline",
        "eval.similarity_model=null", "eval.progress=false", "save_model=false", *overrides])
    name = ",".join(overrides)
    return resumable_run(run, cfg, root / f"{sweep}-v1" / name)


def test_offline_wandb_files_give_the_tables_of_the_local_records(tiny_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    root = tmp_path / "multirun"
    for seed in (0, 1, 2):
        for level in ("grpo", "dr_grpo"):
            _sweep_point(tiny_cache, root, "bias", f"bias={level}", f"seed={seed}")
        copied = _sweep_point(tiny_cache, root, "length", "length_reward=none", f"seed={seed}")
        assert copied["reused_from"].endswith(f"bias=grpo,seed={seed}")  # the shared arm: not trained again

    # Every run has its W&B run, the copies marked as such.
    offline = scan_wandb_runs("offline", api=OfflineApi([root]))
    assert len(offline.runs) == 9 and offline.excluded.empty
    assert offline.runs["reused_from"].notna().sum() == 3
    assert sorted(offline.runs["wandb_group"].unique()) == ["bias-v1", "length-v1"]

    local_out, wandb_out = tmp_path / "local", tmp_path / "wandb"
    assert analysis_main(["--runs", str(root), "--out", str(local_out)]) == 0
    assert analysis_main(["--wandb-dir", str(root), "--out", str(wandb_out)]) == 0
    for name in STUDY_FILES:
        assert (wandb_out / name).read_text() == (local_out / name).read_text(), name
    arms = pd.read_csv(wandb_out / "length.csv")
    assert arms["length_reward"].tolist() == ["none"] and arms["n"].tolist() == [3]
    # One group only: --group narrows the offline files as it narrows the server's runs.
    assert analysis_main(["--wandb-dir", str(root), "--group", "length-v1", "--out", str(tmp_path / "g")]) == 0
    assert not (tmp_path / "g" / "bias.csv").exists() and (tmp_path / "g" / "length.csv").exists()
