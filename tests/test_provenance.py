"""Provenance: every record says what produced it; skip, resume and the shared-arm copy never cross a difference in
it silently; one definition of finished; sweep versions never pooled; W&B never decides whether a run happens."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from analysis.__main__ import main as analysis_main
from medvqa_rl.config_checks import ConfigError, check_config
from medvqa_rl.models.shipped_tiny import SHIPPED_DIR
from medvqa_rl.bookkeeping.provenance import COPY_PARTS, PREFIX, differences, run_provenance
from medvqa_rl.reuse.resumable import resumable_run
from medvqa_rl.bookkeeping.run_record import finished_record, write_metrics

from .conftest import compose_config
from .test_resumable import Recorder


def _cfg(*overrides: str):
    return compose_config(["wandb.mode=disabled", *overrides])


class OtherProcesses(Recorder):
    """A run recorded by another number of processes (as a 4-GPU job would record it)."""

    def __call__(self, cfg, run_dir, resume_from=None, provenance=None):
        return super().__call__(cfg, run_dir, resume_from, provenance | {PREFIX + "processes": "4"})


def test_a_record_carries_every_part_of_its_provenance():
    provenance = run_provenance(_cfg(), 1)
    for part in COPY_PARTS:
        assert provenance[PREFIX + part], part
    assert "tiny instruct, recipe" in provenance[PREFIX + "init/source"]
    assert provenance[PREFIX + "data/source"].startswith("synthetic generator")
    assert provenance[PREFIX + "processes"] == "1"
    # A checkout: the commit is recorded beside the source digest.
    assert provenance[PREFIX + "code/git_commit"] is None or len(provenance[PREFIX + "code/git_commit"]) == 40
    # The config part is the config fingerprint: presentation keys do not change it, a seed does.
    assert run_provenance(_cfg("eval.progress=false"), 1)[PREFIX + "config"] == provenance[PREFIX + "config"]
    assert run_provenance(_cfg("seed=1"), 1)[PREFIX + "config"] != provenance[PREFIX + "config"]


def test_a_changed_local_init_reruns_with_a_log_line_and_an_unchanged_one_skips(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    init = tmp_path / "init"
    shutil.copytree(SHIPPED_DIR / "instruct", init)
    cfg = _cfg(f"model_init.path={init}", f"cache_dir={tmp_path / 'cache'}")
    run_fn = Recorder()
    resumable_run(run_fn, cfg, tmp_path / "run")
    resumable_run(run_fn, cfg, tmp_path / "run")
    assert run_fn.calls == 1 and "skipped" in caplog.text

    caplog.clear()
    config = json.loads((init / "config.json").read_text())
    (init / "config.json").write_text(json.dumps(config | {"initializer_range": 0.5}))  # new weights, same path
    resumable_run(run_fn, cfg, tmp_path / "run")
    assert run_fn.calls == 2
    assert "not skipped" in caplog.text and "differs in init (" in caplog.text and str(init) in caplog.text


def test_a_changed_dataset_file_reruns(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    data = tmp_path / "vqa_rad"
    data.mkdir()
    (data / "VQA_RAD Dataset Public.json").write_text("[]")
    cfg = _cfg("dataset=vqa_rad", f"dataset.path={data}", f"cache_dir={tmp_path / 'cache'}")
    run_fn = Recorder()
    resumable_run(run_fn, cfg, tmp_path / "run")
    resumable_run(run_fn, cfg, tmp_path / "run")
    assert run_fn.calls == 1
    time.sleep(0.01)
    (data / "VQA_RAD Dataset Public.json").write_text("[ ]")
    resumable_run(run_fn, cfg, tmp_path / "run")
    assert run_fn.calls == 2 and "differs in data (" in caplog.text and str(data) in caplog.text


def test_a_run_recorded_by_another_process_count_reruns(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    resumable_run(OtherProcesses(), _cfg(), tmp_path)
    run_fn = Recorder()
    resumable_run(run_fn, _cfg(), tmp_path)
    assert run_fn.calls == 1 and "differs in processes (4 -> 1)" in caplog.text


def test_a_record_from_before_provenance_reruns(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cfg = _cfg()
    write_metrics(tmp_path, {"test/accuracy": 50.0, "config_fingerprint": run_provenance(cfg, 1)[PREFIX + "config"]})
    run_fn = Recorder()
    resumable_run(run_fn, cfg, tmp_path)
    assert run_fn.calls == 1 and "differs in init (not recorded" in caplog.text


def test_a_record_with_a_failure_beside_it_is_not_finished_retried_and_never_copied(tmp_path):
    root = f"sweep.root={tmp_path}"
    bias_run = tmp_path / "bias-v1" / "bias=grpo,seed=0"
    resumable_run(Recorder(), _cfg("sweep=bias", root), bias_run)
    (bias_run / "failure.json").write_text(json.dumps({"status": "failed", "error_type": "CommError",
                                                        "message": "W&B finish raised"}))
    assert finished_record(bias_run) is None
    # Another sweep's grid point of the same config trains: the record beside a failure is not copied.
    run_fn, init_run = Recorder(), tmp_path / "init-v1" / "model_init=instruct,seed=0"
    resumable_run(run_fn, _cfg("sweep=init", root), init_run)
    assert run_fn.calls == 1
    # The rerun does not skip it: it takes the finished record init-v1 now holds; both earlier files kept aside.
    resumable_run(Recorder(), _cfg("sweep=bias", root), bias_run)
    assert finished_record(bias_run)["reused_from"] == str(init_run)
    (previous,) = (bias_run / "previous").iterdir()
    assert {p.name for p in previous.iterdir()} >= {"metrics.json", "failure.json"}


def test_a_copy_into_another_sweep_needs_the_same_code_and_versions(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    root = f"sweep.root={tmp_path}"
    bias_run = tmp_path / "bias-v1" / "bias=grpo,seed=0"
    resumable_run(Recorder(), _cfg("sweep=bias", root), bias_run)
    record = json.loads((bias_run / "metrics.json").read_text())
    write_metrics(bias_run, record | {PREFIX + "code": "0123456789abcdef"})  # trained by other code
    run_fn = Recorder()
    resumable_run(run_fn, _cfg("sweep=init", root), tmp_path / "init-v1" / "model_init=instruct,seed=0")
    assert run_fn.calls == 1
    assert f"not reused: {bias_run}" in caplog.text and "differs in code (0123456789abcdef ->" in caplog.text
    # The same sweep's own rerun keeps it (skip needs config, init, data and processes) and says what differs.
    caplog.clear()
    run_fn = Recorder()
    resumable_run(run_fn, _cfg("sweep=bias", root), bias_run)
    assert run_fn.calls == 0 and "kept although its code (0123456789abcdef" in caplog.text


def test_the_differences_name_each_part():
    recorded = {PREFIX + p: "a" for p in COPY_PARTS}
    current = recorded | {PREFIX + "data": "b", PREFIX + "data/source": "/data/pmc"}
    assert differences(recorded, current) == ["data (a -> b: /data/pmc)"]
    assert differences(recorded, recorded, COPY_PARTS) == []


def test_the_init_evaluation_cache_is_keyed_by_the_scoring_code(monkeypatch):
    from medvqa_rl.bookkeeping import init_cache

    cfg, provenance, records = _cfg(), run_provenance(_cfg(), 1), [{"id": "q1"}]
    key = init_cache.init_eval_key(cfg, provenance, records)
    monkeypatch.setattr(init_cache, "source_digest", lambda *paths: "another parser")
    assert init_cache.init_eval_key(cfg, provenance, records) != key
    monkeypatch.undo()
    assert init_cache.init_eval_key(cfg, provenance | {PREFIX + "init": "other weights"}, records) != key
    assert init_cache.init_eval_key(cfg, provenance, records) == key


# --- sweep versions ---------------------------------------------------------------------------------------

def _versioned_run(root: Path, version: int, level: str, seed: int, accuracy: float) -> None:
    run_dir = root / f"bias-v{version}" / f"bias={level},seed={seed}"
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose_config(["sweep=bias", f"sweep.version={version}", f"bias={level}", f"seed={seed}"]),
                   run_dir / ".hydra" / "config.yaml")
    write_metrics(run_dir, {"test/accuracy": accuracy, "factor/bias": level, "factor/method": "grpo",
                            "eval/judge": "rule"})


def test_versions_of_one_sweep_are_separate_studies_never_pooled(tmp_path, capsys):
    for seed in (0, 1):
        _versioned_run(tmp_path / "multirun", 1, "grpo", seed, 40.0)
        _versioned_run(tmp_path / "multirun", 1, "dr_grpo", seed, 41.0)
        _versioned_run(tmp_path / "multirun", 2, "grpo", seed, 80.0)
        _versioned_run(tmp_path / "multirun", 2, "dr_grpo", seed, 84.0)
    out = tmp_path / "tables"
    assert analysis_main(["--runs", str(tmp_path / "multirun"), "--out", str(out)]) == 0
    assert not (out / "bias.csv").exists()
    v1, v2 = (json.loads(pd_csv(out / f"bias-v{v}.csv")) for v in (1, 2))
    assert [(r["bias"], r["n"], r["test/accuracy_mean"]) for r in v1] == [("dr_grpo", 2, 41.0), ("grpo", 2, 40.0)]
    assert [(r["bias"], r["n"], r["test/accuracy_mean"]) for r in v2] == [("dr_grpo", 2, 84.0), ("grpo", 2, 80.0)]
    assert "version 2" in (out / "bias-v2.md").read_text()
    assert json.loads(pd_csv(out / "bias-v2_paired.csv"))[0]["test/accuracy_mean"] == 4.0
    assert 'id="bias-v1"' in (out / "index.html").read_text()


def pd_csv(path: Path) -> str:
    import pandas as pd

    return pd.read_csv(path).to_json(orient="records")


def test_a_study_without_its_reference_level_says_so(tmp_path, capsys):
    for seed in (0, 1):
        _versioned_run(tmp_path, 1, "dr_grpo", seed, 41.0)
    out = tmp_path / "tables"
    assert analysis_main(["--runs", str(tmp_path / "bias-v1"), "--out", str(out)]) == 0
    said = "No paired effects for bias: its reference level grpo has no finished run here"
    assert said in (out / "bias_paired.md").read_text() and said in capsys.readouterr().out
    assert said in (out / "index.html").read_text()


# --- W&B never decides whether a run happens --------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_online_without_a_key_stops_before_anything_loads(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE", raising=False)
    (tmp_path / "netrc").write_text("")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    with pytest.raises(ConfigError, match=r"^wandb.mode=online: no W&B API key"):
        check_config(compose_config(["wandb.mode=online"]))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    check_config(compose_config(["wandb.mode=online"]))


def test_an_unreachable_server_leaves_the_run_logging_offline(tmp_path, monkeypatch, caplog):
    from medvqa_rl import tracking

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(tracking, "_UNREACHABLE", set())
    cfg = compose_config(["wandb.mode=online", "wandb.init_timeout=2"])
    started = time.time()
    run = tracking.start_wandb(cfg, str(tmp_path), "a-fixed-run-id")  # a run dir's own id, as run() passes it
    try:
        assert run.settings.mode == "offline" and run.id == "a-fixed-run-id" and time.time() - started < 60
        assert "logging offline" in caplog.text and f"wandb sync {tmp_path}/wandb/offline-run-*" in caplog.text
    finally:
        run.finish()
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    # Later W&B runs of the process (a failure record, the next grid point) go offline without waiting again.
    caplog.clear()
    started = time.time()
    tracking.start_wandb(cfg, str(tmp_path / "next")).finish()
    assert time.time() - started < 10 and "not reachable" not in caplog.text


def test_a_wandb_failure_at_finish_is_a_warning(caplog):
    from medvqa_rl.tracking import finish_safely

    class Broken:
        summary = {}

        def finish(self):
            raise RuntimeError("upload refused")

    finish_safely(Broken(), {"test/accuracy": 1.0}, lambda: None)
    assert "upload refused" in caplog.text and "local record" in caplog.text


# --- a hub id's revision, W&B runs without a summary ------------------------------------------------------

def test_a_hub_init_is_identified_by_the_revision_it_resolves_to(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from medvqa_rl.bookkeeping.provenance import init_identity

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    cfg = _cfg("model_init.path=Qwen/Qwen2-VL-2B-Instruct")
    digest, source = init_identity(cfg, "Qwen/Qwen2-VL-2B-Instruct")
    assert "not resolved" in source  # not downloaded yet: the revision asked for stands in
    repo = tmp_path / "models--Qwen--Qwen2-VL-2B-Instruct"
    for sha in ("a" * 40, "b" * 40):
        (repo / "snapshots" / sha).mkdir(parents=True)
        (repo / "snapshots" / sha / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    first, source = init_identity(cfg, "Qwen/Qwen2-VL-2B-Instruct")
    assert source == f"hub Qwen/Qwen2-VL-2B-Instruct@{'a' * 40}" and first != digest
    (repo / "refs" / "main").write_text("b" * 40)  # the branch moved on: another init
    assert init_identity(cfg, "Qwen/Qwen2-VL-2B-Instruct")[0] != first
    pinned = _cfg("model_init.path=Qwen/Qwen2-VL-2B-Instruct", f"model_init.revision={'a' * 40}")
    assert init_identity(pinned, "Qwen/Qwen2-VL-2B-Instruct")[0] == first


def test_offline_wandb_runs_without_a_summary_or_exit_are_listed_never_averaged():
    from analysis.records import scan_wandb_runs
    from analysis.wandb_offline import OfflineRun

    finished, killed, failed = (OfflineRun(id=i, name=f"runs/{i}") for i in ("a", "b", "c"))
    for run, seed in ((finished, 0), (killed, 1), (failed, 2)):
        run.add({"type": "run", "run": {"run_group": "bias-v1", "job_type": "grpo", "config": {"update": {
            "seed": seed, "sweep": {"name": "bias", "version": 1}, "factor/bias": "grpo", "_wandb": {}}}}})
    finished.add({"type": "summary", "summary": {"update": {"test/accuracy": 40.0, "_runtime": 3}}})
    finished.add({"type": "exit", "exit": {"exit_code": 0}})
    failed.add({"type": "summary", "summary": {"update": {"test/accuracy": 99.0, "failure/status": "failed",
                                                          "failure/message": "OOM"}}})
    failed.add({"type": "exit", "exit": {"exit_code": 1}})

    class Api:
        def runs(self, path, filters=None):
            return [finished, killed, failed]

    records = scan_wandb_runs("offline", api=Api())
    assert records.runs["test/accuracy"].tolist() == [40.0] and records.runs["sweep_version"].tolist() == [1]
    assert dict(zip(records.excluded["run"], records.excluded["status"])) == {"runs/b": "running",
                                                                             "runs/c": "failed"}
