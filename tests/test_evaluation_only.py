"""The evaluation-only run (method=none): any checkpoint scored on the run's test sets and recorded as a run. A
finished run's model/ (full weights or LoRA adapters) evaluated alone gives that run's test metrics exactly; the
untrained init's is the zero-shot row, served by the init-evaluation cache; bad checkpoints fail before loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medvqa_rl.reuse.resumable import resumable_run
from medvqa_rl.config_checks import ConfigError
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, compose_config

# The small run's data, decoder and test sets; its method.* budget is the trained arm's own (method=none has none).
SHARED = [o for o in SMALL_RUN if not o.startswith("method.")] + [
    "test_sets=synthetic", "eval.test_sets.synthetic_ood.test_size=8"]
TRAINED = ["method.max_steps=2", "method.per_device_train_batch_size=16", "method.num_generations=4",
           "method.logging_steps=1"]


def _cfg(tiny_cache, *overrides):
    return compose_config(SMALL_TINY + SHARED + [f"cache_dir={tiny_cache}", *overrides])


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _test_metrics(record: dict) -> dict:
    """The test metrics; the judge's request counts aside: a verdict the run's judge had cached (from its init
    evaluation) costs no request, so they count the evaluation's order, not what the model did."""
    return {k: v for k, v in record.items() if k.startswith("test/") and not k.endswith(("judge/requests",
                                                                                           "judge/failures"))}


@pytest.fixture(scope="module")
def grpo_run(tiny_cache, tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("grpo") / "run"
    return run_dir, run(_cfg(tiny_cache, *TRAINED), run_dir)


@pytest.fixture(scope="module")
def lora_run(tiny_cache, tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("lora") / "run"
    return run_dir, run(_cfg(tiny_cache, "method=sft_lora", "method.max_steps=3",
                             "method.per_device_train_batch_size=8"), run_dir)


def test_a_finished_runs_model_evaluated_alone_gives_its_test_metrics_exactly(grpo_run, tiny_cache, tmp_path):
    trained_dir, trained = grpo_run
    assert trained["test/perplexity"] != trained["init/test/perplexity"]  # training changed the model
    record = run(_cfg(tiny_cache, "method=none", f"model_init.path={trained_dir / 'model'}"), tmp_path / "eval")
    # Every test metric, the in-domain split's and the OOD set's, to the last digit; and each prediction.
    assert _test_metrics(record) == _test_metrics(trained)
    assert "test/synthetic_ood/accuracy" in record
    for name in ("predictions.jsonl", "test_sets/synthetic_ood/predictions.jsonl"):
        assert _lines(tmp_path / "eval" / name) == _lines(trained_dir / name)
    # A run record like any other: no training, the checkpoint's files as its init, the same data.
    assert record["init/test/accuracy"] == record["test/accuracy"] and record["factor/method"] == "none"
    assert (record["train/steps"], record["train/examples"], record["train/questions_per_step"]) == (0, 0, 0)
    assert record["provenance/init/source"].startswith(f"local {trained_dir / 'model'}, files ")
    assert record["provenance/data"] == trained["provenance/data"]
    assert not (tmp_path / "eval" / "model").exists() and (tmp_path / "eval" / "history.jsonl").read_text() == ""


def test_lora_adapters_evaluated_alone_give_the_runs_test_metrics_exactly(lora_run, tiny_cache, tmp_path):
    trained_dir, trained = lora_run
    adapters = trained_dir / "model"
    assert (adapters / "adapter_config.json").is_file() and not (adapters / "model.safetensors").exists()
    assert trained["test/perplexity"] != trained["init/test/perplexity"]
    record = run(_cfg(tiny_cache, "method=none", f"model_init.path={adapters}"), tmp_path / "eval")
    assert _test_metrics(record) == _test_metrics(trained)
    assert _lines(tmp_path / "eval" / "predictions.jsonl") == _lines(trained_dir / "predictions.jsonl")
    # The adapters' identity includes the checkpoint they apply to.
    assert record["provenance/init/source"].startswith(f"LoRA adapters {adapters}, files ")
    assert ", on local " in record["provenance/init/source"]


def test_an_adapter_folder_without_its_base_fails_before_loading(lora_run, tiny_cache, tmp_path, monkeypatch):
    import medvqa_rl.run as run_module

    def must_not_load(*args, **kwargs):
        raise AssertionError("data or model was loaded before the adapters' base was checked")

    monkeypatch.setattr(run_module, "load_run_data", must_not_load)
    monkeypatch.setattr(run_module, "load_init", must_not_load)
    moved = shutil.copytree(lora_run[0] / "model", tmp_path / "adapters")
    settings = json.loads((moved / "adapter_config.json").read_text())
    true_base = settings["base_model_name_or_path"]
    (moved / "adapter_config.json").write_text(json.dumps(settings | {"base_model_name_or_path": "/gone/instruct"}))
    with pytest.raises(ConfigError, match=r"LoRA adapters for '/gone/instruct', which does not exist.*adapter_base"):
        run(_cfg(tiny_cache, "method=none", f"model_init.path={moved}"), tmp_path / "run")
    (moved / "adapter_config.json").write_text(json.dumps(settings | {"base_model_name_or_path": None}))
    with pytest.raises(ConfigError, match="names no base checkpoint"):
        run(_cfg(tiny_cache, "method=none", f"model_init.path={moved}"), tmp_path / "run")
    # model_init.adapter_base names it: past the checks (to the data, which this test does not load).
    with pytest.raises(AssertionError, match="loaded before"):
        run(_cfg(tiny_cache, "method=none", f"model_init.path={moved}", f"model_init.adapter_base={true_base}"),
            tmp_path / "run")
    with pytest.raises(ConfigError, match="model_init.adapter_base=.* holds no LoRA adapters"):
        run(_cfg(tiny_cache, "method=none", f"model_init.adapter_base={true_base}"), tmp_path / "run")


def test_the_zero_shot_row_is_the_inits_evaluation_from_the_cache(grpo_run, tiny_cache, tmp_path):
    """method=none from the same init, seed and test sets as the trained arm: its evaluation is that arm's
    evaluation before training, read from the init-evaluation cache; a rerun of it is skipped."""
    _, trained = grpo_run
    cfg = _cfg(tiny_cache, "method=none")
    record = resumable_run(run, cfg, tmp_path / "zero-shot")
    assert record["init/cached"] is True
    assert _test_metrics(record) == _test_metrics({k.removeprefix("init/"): v for k, v in trained.items()
                                                   if k.startswith("init/test/")})
    assert record["provenance/init"] == trained["provenance/init"]
    assert resumable_run(lambda *args, **kwargs: pytest.fail("ran again"), cfg, tmp_path / "zero-shot") == record
