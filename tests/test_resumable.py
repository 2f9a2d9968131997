"""Resumable runs without training: skip a finished run of the same config, set earlier attempts aside,
record failures. The end-to-end sweep versions of these are in test_sweeps.py."""

from __future__ import annotations

import json

import pytest

from medvqa_rl.reuse.resumable import config_fingerprint, resumable_run
from medvqa_rl.bookkeeping.run_record import write_metrics

from .conftest import compose_config


def _cfg(*overrides: str):
    return compose_config(["wandb.mode=disabled", *overrides])


class Recorder:
    """A stand-in for run(): writes a finished record the way run() does, or raises."""

    def __init__(self, error: BaseException | None = None):
        self.calls, self.error, self.resumed_from = 0, error, []

    def __call__(self, cfg, run_dir, resume_from=None, provenance=None):
        self.calls += 1
        self.resumed_from.append(resume_from)
        if self.error is not None:
            raise self.error
        record = {"test/accuracy": 50.0, "config_fingerprint": config_fingerprint(cfg), **provenance}
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "predictions.jsonl").write_text("{}\n")
        write_metrics(run_dir, record)
        return record


def test_fingerprint_ignores_presentation_not_substance():
    base = config_fingerprint(_cfg())
    assert config_fingerprint(_cfg("wandb.mode=offline", "eval.progress=false", "cache_dir=/elsewhere",
                                   "sweep=bias")) == base
    assert config_fingerprint(_cfg("seed=1")) != base
    assert config_fingerprint(_cfg("method.learning_rate=1e-4")) != base
    assert config_fingerprint(_cfg("bias=dr_grpo")) != base


def test_tiny_build_settings_count_only_for_the_embedded_tiny_model():
    assert config_fingerprint(_cfg("family.build.seed=1")) != config_fingerprint(_cfg())
    # A checkpoint of one's own on the tiny family: the (unused) build settings do not count.
    own = ["model_init.path=/ckpt/own"]
    assert config_fingerprint(_cfg(*own, "family.build.seed=1")) == config_fingerprint(_cfg(*own))
    assert config_fingerprint(_cfg(*own, "family.build.arch.text_layers=2")) == config_fingerprint(_cfg(*own))


def test_finished_run_of_the_same_config_is_skipped(tmp_path):
    cfg, run_fn = _cfg(), Recorder()
    first = resumable_run(run_fn, cfg, tmp_path)
    before = (tmp_path / "metrics.json").stat().st_mtime_ns
    again = resumable_run(run_fn, cfg, tmp_path)
    assert run_fn.calls == 1 and again == first
    assert (tmp_path / "metrics.json").stat().st_mtime_ns == before


def test_finished_run_of_another_config_is_kept_aside_and_rerun(tmp_path):
    resumable_run(Recorder(), _cfg(), tmp_path)
    old = json.loads((tmp_path / "metrics.json").read_text())
    run_fn = Recorder()
    resumable_run(run_fn, _cfg("method.learning_rate=1e-4"), tmp_path)
    assert run_fn.calls == 1
    (previous,) = (tmp_path / "previous").iterdir()
    assert json.loads((previous / "metrics.json").read_text()) == old
    assert (previous / "predictions.jsonl").exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["config_fingerprint"] != old["config_fingerprint"]


def test_failure_is_recorded_and_raised_then_redone(tmp_path):
    cfg = _cfg()
    with pytest.raises(RuntimeError, match="judge unreachable"):
        resumable_run(Recorder(RuntimeError("judge unreachable")), cfg, tmp_path)
    failure = json.loads((tmp_path / "failure.json").read_text())
    assert (failure["status"], failure["error_type"], failure["message"]) == ("failed", "RuntimeError",
                                                                            "judge unreachable")
    assert "Traceback" in failure["traceback"] and not (tmp_path / "metrics.json").exists()

    run_fn = Recorder()
    resumable_run(run_fn, cfg, tmp_path)
    assert run_fn.calls == 1 and (tmp_path / "metrics.json").exists() and not (tmp_path / "failure.json").exists()
    (previous,) = (tmp_path / "previous").iterdir()
    assert json.loads((previous / "failure.json").read_text())["message"] == "judge unreachable"


def test_interrupt_is_recorded_as_interrupted(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        resumable_run(Recorder(KeyboardInterrupt()), _cfg(), tmp_path)
    assert json.loads((tmp_path / "failure.json").read_text())["status"] == "interrupted"


def test_half_written_metrics_do_not_count_as_finished(tmp_path):
    (tmp_path / "metrics.json").write_text('{"test/accuracy": 5')  # cut off mid-write by an old version
    run_fn = Recorder()
    resumable_run(run_fn, _cfg(), tmp_path)
    assert run_fn.calls == 1
    (previous,) = (tmp_path / "previous").iterdir()
    assert (previous / "metrics.json").read_text() == '{"test/accuracy": 5'


def test_a_studys_reference_arm_finished_in_another_study_is_copied_not_trained(tmp_path):
    # sweep=bias and sweep=init share the reference arm (GRPO from instruct): one training, two records.
    root = f"sweep.root={tmp_path}"
    bias_run, init_run = tmp_path / "bias-v1" / "bias=grpo,seed=0", tmp_path / "init-v1" / "model_init=instruct,seed=0"
    trained = resumable_run(Recorder(), _cfg("sweep=bias", root, "bias=grpo"), bias_run)
    (bias_run / "model").mkdir()
    (bias_run / "model" / "model.safetensors").write_bytes(b"weights")

    run_fn = Recorder()
    copied = resumable_run(run_fn, _cfg("sweep=init", root, "model_init=instruct"), init_run)
    assert run_fn.calls == 0
    assert copied == trained | {"reused_from": str(bias_run)}
    assert json.loads((init_run / "metrics.json").read_text()) == copied
    assert (init_run / "predictions.jsonl").read_text() == (bias_run / "predictions.jsonl").read_text()
    assert (init_run / "model" / "model.safetensors").read_bytes() == b"weights"
    # The copy says which study it belongs to; analysis reads the sweep from it.
    assert "name: init" in (init_run / "resolved_config.yaml").read_text()

    # A third study copies the original, never the copy; another config (base) is trained.
    third = resumable_run(Recorder(), _cfg("sweep=length", root), tmp_path / "length-v1" / "length_reward=none,seed=0")
    assert third["reused_from"] == str(bias_run)
    run_fn = Recorder()
    resumable_run(run_fn, _cfg("sweep=init", root, "model_init=base"), tmp_path / "init-v1" / "model_init=base,seed=0")
    assert run_fn.calls == 1


def test_reuse_across_sweeps_can_be_switched_off_and_never_applies_outside_a_named_sweep(tmp_path):
    root = f"sweep.root={tmp_path}"
    resumable_run(Recorder(), _cfg("sweep=bias", root), tmp_path / "bias-v1" / "seed=0")
    run_fn = Recorder()
    resumable_run(run_fn, _cfg("sweep=init", root, "sweep.reuse_finished=false"), tmp_path / "init-v1" / "seed=0")
    assert run_fn.calls == 1
    resumable_run(run_fn, _cfg(root), tmp_path / "single" / "run")
    assert run_fn.calls == 2
