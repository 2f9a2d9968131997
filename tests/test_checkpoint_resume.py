"""Checkpoints and resume: a killed or preempted run continues from its newest complete checkpoint and ends
where an unbroken run ends; the trained model is kept; checkpoints of another config are never resumed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from medvqa_rl.bookkeeping import checkpoints
from medvqa_rl.bookkeeping.checkpoints import TRAINER_DIR, mark_trainer_dir, resumable_checkpoint
from medvqa_rl.bookkeeping.provenance import reuse_key, run_provenance
from medvqa_rl.reuse.resumable import resumable_run
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, compose_config
from .helpers.killed_runs import killed_after_checkpoint
from .test_resumable import Recorder

# ------------------------------------------------------------------ which checkpoint a rerun takes --


def _fake_checkpoint(run_dir: Path, step: int) -> Path:
    path = run_dir / TRAINER_DIR / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.ones(4, 4)}, path / "model.safetensors")
    torch.save({"state": {0: torch.zeros(8)}}, path / "optimizer.pt")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    checkpoints.write_manifest(path)  # what run()'s ChecksumManifest callback writes after each save
    return path


ABC = {"provenance/config": "abc", "provenance/init": "i1", "provenance/data": "d1", "provenance/processes": "1"}


def _own(run_dir: Path, key: dict) -> None:
    mark_trainer_dir(run_dir, key)


def test_the_newest_complete_checkpoint_of_this_run_is_resumed(tmp_path, caplog):
    caplog.set_level("INFO")
    for step in (2, 4, 6):
        _fake_checkpoint(tmp_path, step)
    _own(tmp_path, ABC)
    assert resumable_checkpoint(tmp_path, ABC).name == "checkpoint-6"
    assert resumable_checkpoint(tmp_path / "empty", ABC) is None
    # Another config, init, data or process count: not resumed, and the log line names what differs.
    for part, other in (("config", "xyz"), ("init", "i2"), ("data", "d2"), ("processes", "4")):
        caplog.clear()
        assert resumable_checkpoint(tmp_path, ABC | {f"provenance/{part}": other}) is None
        assert f"differs in {part} (" in caplog.text and other in caplog.text


@pytest.mark.parametrize("damage", ["no_trainer_state", "truncated_weights", "truncated_optimizer", "bad_json"])
def test_a_cut_off_newest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path, caplog, damage):
    _fake_checkpoint(tmp_path, 2)
    newest = _fake_checkpoint(tmp_path, 4)
    _own(tmp_path, ABC)
    if damage == "no_trainer_state":
        (newest / "trainer_state.json").unlink()
    elif damage == "bad_json":
        (newest / "trainer_state.json").write_text('{"global_step": 4')
    else:
        file = newest / ("model.safetensors" if damage == "truncated_weights" else "optimizer.pt")
        file.write_bytes(file.read_bytes()[:-20])
    assert resumable_checkpoint(tmp_path, ABC).name == "checkpoint-2"
    assert "checkpoint-4" in caplog.text and "skipping" in caplog.text


def test_resumable_run_resumes_a_checkpoint_and_sets_aside_one_of_another_config(tmp_path):
    cfg = compose_config(["wandb.mode=disabled"])
    _fake_checkpoint(tmp_path, 2)
    _own(tmp_path, reuse_key(run_provenance(cfg, 1)))
    (tmp_path / "failure.json").write_text(json.dumps({"status": "preempted"}))
    recorder = Recorder()
    resumable_run(recorder, cfg, tmp_path)
    assert recorder.resumed_from == [tmp_path / TRAINER_DIR / "checkpoint-2"]
    assert (tmp_path / TRAINER_DIR / "checkpoint-2").is_dir()  # kept where the trainer finds it
    (previous,) = (tmp_path / "previous").iterdir()
    assert (previous / "failure.json").exists()  # the earlier failure is kept, aside

    other = tmp_path / "other"
    _fake_checkpoint(other, 2)
    _own(other, ABC)
    recorder = Recorder()
    resumable_run(recorder, cfg, other)
    assert recorder.resumed_from == [None]  # another config's checkpoint is never resumed...
    (previous,) = (other / "previous").iterdir()
    assert (previous / TRAINER_DIR / "checkpoint-2").is_dir()  # ...but set aside, not deleted


# ------------------------------------------------------------- resumed runs end where unbroken ones do --

METHOD_RUNS = {
    "grpo": [*SMALL_RUN],
    "sft_full": ["dataset.train_size=32", "dataset.test_size=16", "method.per_device_train_batch_size=8",
                 "method.logging_steps=1", "wandb.mode=disabled"],
    "sft_lora": ["dataset.train_size=32", "dataset.test_size=16", "method.per_device_train_batch_size=8",
                 "method.logging_steps=1", "wandb.mode=disabled"],
    "dpo": ["dataset.train_size=32", "dataset.test_size=16", "method.per_device_train_batch_size=8",
            "method.logging_steps=1", "wandb.mode=disabled"],
}


def _resume_cfg(tiny_cache, method: str, *extra: str):
    return compose_config(SMALL_TINY + METHOD_RUNS[method] + [
        f"method={method}", "method.max_steps=4", "method.save_steps=2", "eval.similarity_model=null",
        f"cache_dir={tiny_cache}", *extra])


def _logged_steps(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if "loss" in row]


@pytest.mark.parametrize("method", ["grpo", "sft_full", "sft_lora", "dpo"])
def test_a_run_resumed_from_its_checkpoint_ends_where_the_unbroken_run_ends(tiny_cache, tmp_path, method):
    """The killed run is the unbroken run's state at its step-2 checkpoint (and init record): resumed, it trains
    steps 3-4 only and its metrics equal the unbroken run's."""
    cfg = _resume_cfg(tiny_cache, method, "keep_checkpoints=true")
    unbroken = run(cfg, tmp_path / "unbroken")
    assert unbroken["train/resumed_from_step"] == 0 and unbroken["train/steps"] == 4

    killed = killed_after_checkpoint(tmp_path / "unbroken", tmp_path / "killed", 2)
    resumed = resumable_run(run, cfg, killed)
    assert resumed["train/resumed_from_step"] == 2 and resumed["train/steps"] == 4
    assert _logged_steps(killed) == _logged_steps(tmp_path / "unbroken") == [1, 2, 3, 4]
    for key in ("test/accuracy", "test/format_rate", "test/completion_tokens", "init/test/accuracy"):
        assert resumed[key] == unbroken[key], key
    assert resumed["test/perplexity"] == pytest.approx(unbroken["test/perplexity"], rel=1e-5)


def test_a_finished_run_keeps_its_model_which_loads_and_scores_as_recorded(tiny_cache, tmp_path):
    from medvqa_rl.data.splits import load_splits
    from medvqa_rl.evaluation import evaluate
    from medvqa_rl.models.loading import load_model_and_processor

    cfg = _resume_cfg(tiny_cache, "grpo", "eval.judge_score=false")
    record = run(cfg, tmp_path)
    assert not checkpoints.checkpoints(tmp_path)  # intermediate checkpoints removed once finished
    model, processor = load_model_and_processor(str(tmp_path / "model"))
    _, test = load_splits(cfg.dataset, cache_dir=cfg.cache_dir)
    metrics, _ = evaluate(model, processor, test, batch_size=cfg.eval.batch_size, max_new_tokens=cfg.eval.max_new_tokens)
    assert metrics["accuracy"] == record["test/accuracy"]
    assert metrics["format_rate"] == record["test/format_rate"]


def test_lora_runs_keep_their_adapters(tiny_cache, tmp_path):
    from peft import PeftModel

    from medvqa_rl.models.loading import init_checkpoint, load_model_and_processor

    cfg = _resume_cfg(tiny_cache, "sft_full", "method.lora.enabled=true", "method.max_steps=2",
                      "eval.judge_score=false")
    run(cfg, tmp_path)
    assert (tmp_path / "model" / "adapter_config.json").exists()
    base, _ = load_model_and_processor(init_checkpoint(cfg))
    assert isinstance(PeftModel.from_pretrained(base, tmp_path / "model"), PeftModel)


# ------------------------------------------------------------------ killed and preempted processes --

def _start(run_dir: Path, tiny_cache: str, cwd: Path) -> subprocess.Popen:
    args = [*SMALL_TINY, *SMALL_RUN, "method.max_steps=8", "method.save_steps=2", "eval.similarity_model=null",
            f"cache_dir={tiny_cache}", f"hydra.run.dir={run_dir}"]
    return subprocess.Popen([sys.executable, "-m", "medvqa_rl", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _wait_until(process: subprocess.Popen, ready, what: str, timeout: float, poll: float) -> None:
    """Polls ready() while the run is alive; fails with its stderr if it ends first, or after timeout seconds."""
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.time() < deadline, f"{what} not in time"
        time.sleep(poll)


def _wait_for_checkpoint(process: subprocess.Popen, run_dir: Path, timeout: float = 600) -> None:
    # checksums.json is written last: a kill before it leaves checkpoint-2 incomplete, set aside on rerun
    marker = run_dir / TRAINER_DIR / "checkpoint-2" / checkpoints.MANIFEST
    _wait_until(process, marker.exists, "no checkpoint", timeout, poll=0.2)


def _assert_scores_as_an_unbroken_run(resumed: dict, tiny_cache: str, tmp_path: Path) -> None:
    unbroken_dir = tmp_path / "unbroken"
    unbroken = _start(unbroken_dir, tiny_cache, tmp_path)
    assert unbroken.wait(timeout=900) == 0, unbroken.stderr.read()[-3000:]
    expected = json.loads((unbroken_dir / "metrics.json").read_text())
    for key in ("test/accuracy", "test/format_rate", "test/completion_tokens"):
        assert resumed[key] == expected[key], key


@pytest.mark.slow  # three CLI runs of the tiny model: the slow tier
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_or_preempted_run_resumes_when_rerun(tiny_cache, tmp_path, sig):
    """SIGKILL after the first checkpoint: the rerun resumes from a saved step, not step 0. SIGTERM: the run
    saves a checkpoint at the step it reached, exits non-zero with a 'preempted' record, and the rerun
    continues from exactly there. Either way it ends as the unbroken run does."""
    run_dir = tmp_path / "run"
    process = _start(run_dir, tiny_cache, tmp_path)
    _wait_for_checkpoint(process, run_dir)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode != 0
    if sig == signal.SIGTERM:
        assert json.loads((run_dir / "failure.json").read_text())["status"] == "preempted", stderr[-3000:]
        saved = checkpoints.checkpoint_step(checkpoints.checkpoints(run_dir)[0])
    assert not (run_dir / "metrics.json").exists()

    rerun = _start(run_dir, tiny_cache, tmp_path)
    assert rerun.wait(timeout=900) == 0, rerun.stderr.read()[-3000:]
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed["train/resumed_from_step"] >= 2 and resumed["train/steps"] == 8
    if sig == signal.SIGTERM:
        assert resumed["train/resumed_from_step"] == saved
    assert _logged_steps(run_dir) == list(range(1, 9))
    _assert_scores_as_an_unbroken_run(resumed, tiny_cache, tmp_path)


@pytest.mark.slow  # two CLI runs of the tiny model: the slow tier
def test_a_run_killed_after_its_final_checkpoint_trains_no_step_more_when_rerun(tiny_cache, tmp_path):
    """SIGKILL once training is over (the final checkpoint complete, the trained model being saved, the evaluation
    after next): the rerun resumes at max_steps, trains nothing, and records the steps and scores of the unbroken
    run (transformers' loop, resumed at max_steps, used to run one step more)."""
    run_dir = tmp_path / "run"
    process = _start(run_dir, tiny_cache, tmp_path)
    final = run_dir / TRAINER_DIR / "checkpoint-8" / checkpoints.MANIFEST
    _wait_until(process, lambda: final.exists() and (run_dir / "model").exists(), "the end of training", 900, poll=0.05)
    process.kill()
    process.communicate(timeout=600)
    assert not (run_dir / "metrics.json").exists()

    rerun = _start(run_dir, tiny_cache, tmp_path)
    assert rerun.wait(timeout=900) == 0, rerun.stderr.read()[-3000:]
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed["train/resumed_from_step"] == 8 and resumed["train/steps"] == 8
    assert _logged_steps(run_dir) == list(range(1, 9))
    _assert_scores_as_an_unbroken_run(resumed, tiny_cache, tmp_path)
