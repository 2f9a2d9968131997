"""Extra test sets (eval.test_sets): any dataset config evaluated beside the in-domain test split, before and after
training, recorded as test/<set>/*; each validated (before any model loads) and cached on its own; bad test sets
are clear errors before loading."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from medvqa_rl.config_checks import ConfigError
from medvqa_rl.data.test_sets import load_run_data
from medvqa_rl.data.validation import BadRowsError
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, cli, compose_config
from .test_closed_vqa import write_parquet_layout, write_slake


def _real_sets(tmp_path, rad_edit=None) -> list[str]:
    """VQA-RAD's and SLAKE's layouts (test splits: 6 closed + 2 open questions; 5 closed, 1 open, 1 Chinese)."""
    rad = write_parquet_layout(tmp_path / "rad", n_train=4, n_test=8, edit=rad_edit)
    slake = write_slake(tmp_path / "slake")
    return ["+dataset@eval.test_sets.vqa_rad=vqa_rad", f"eval.test_sets.vqa_rad.path={rad}",
            "+dataset@eval.test_sets.slake=slake", f"eval.test_sets.slake.path={slake}"]


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_tiny_run_scores_vqa_rad_and_slake_before_and_after_training(tiny_cache, tmp_path):
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [f"cache_dir={tiny_cache}", *_real_sets(tmp_path)])
    record = run(cfg, tmp_path / "run")
    for name, n in (("vqa_rad", 6), ("slake", 5)):
        for stage in ("test", "init/test"):
            rows = _lines(tmp_path / "run" / "test_sets" / name / f"{'init_' if stage == 'init/test' else ''}predictions.jsonl")
            assert len(rows) == n and all(r["options"] == ["yes", "no"] for r in rows)
            assert record[f"{stage}/{name}/accuracy"] == 100.0 * sum(r["correct"] for r in rows) / n
            assert f"{stage}/{name}/similarity" in record and f"{stage}/{name}/perplexity" in record
            # The rule judge needs the synthetic scans' findings: no judge score on a real set, only in-domain.
            assert f"{stage}/{name}/judge_score" not in record and f"{stage}/judge_score" in record
    assert {"test/slake/accuracy/modality", "test/slake/accuracy/abnormality"} <= set(record)
    # The in-domain keys stay where they were; each set's left-out rows are counted under its name.
    assert record["test/accuracy"] == 100.0 * sum(r["correct"] for r in _lines(tmp_path / "run" / "predictions.jsonl")) / 16
    assert record["data/skipped/vqa_rad/test/open_question"] == 2
    assert (record["data/skipped/slake/test/open_question"], record["data/skipped/slake/test/not_english"]) == (1, 1)
    # What the sets are is part of the record's provenance (a changed test file reruns the run, never skips it).
    assert "test set vqa_rad: " in record["provenance/data/source"] and "test set slake: " in record["provenance/data/source"]


def test_each_test_set_is_cached_on_its_own(tiny_cache, tmp_path, monkeypatch):
    """The init-evaluation cache keys each set apart: adding a test set evaluates that set only."""
    import medvqa_rl.run as run_module

    evaluated = []

    def counting(model, processor, records, **kwargs):
        evaluated.append(records[0]["id"].split("-")[0])
        return evaluate(model, processor, records, **kwargs)

    evaluate = run_module.evaluate
    monkeypatch.setattr(run_module, "evaluate", counting)
    # seed 5: test questions no other test evaluates (the cache under tiny_cache is the session's).
    base = SMALL_TINY + [o for o in SMALL_RUN if not o.startswith("method.")] + [
        f"cache_dir={tiny_cache}", "method=none", "eval.similarity_model=null", "seed=5"]
    run(compose_config(base), tmp_path / "alone")
    assert evaluated == ["synthetic"]
    with_rad = compose_config(base + _real_sets(tmp_path)[:2])
    record = run(with_rad, tmp_path / "with_rad")
    assert evaluated == ["synthetic", "vqa_rad"] and record["init/cached"] is False
    record = run(with_rad, tmp_path / "again")
    assert evaluated == ["synthetic", "vqa_rad"] and record["init/cached"] is True


def _must_not_load_the_model(monkeypatch):
    import medvqa_rl.run as run_module

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the test sets were checked")

    monkeypatch.setattr(run_module, "load_init", must_not_load)


def _corrupt_second_test_image(split, rows):
    if split == "test":
        rows[1]["image"] = {"bytes": b"not a jpeg", "path": "x.jpg"}


def test_a_bad_row_in_a_test_set_names_its_file_and_row_before_the_model_loads(tmp_path, monkeypatch):
    _must_not_load_the_model(monkeypatch)
    sets = _real_sets(tmp_path, rad_edit=_corrupt_second_test_image)
    cfg = compose_config(SMALL_RUN + [f"cache_dir={tmp_path / 'cache'}", *sets])
    with pytest.raises(BadRowsError, match=r"(?s)eval\.test_sets\.vqa_rad: .*test-00000-of-00001\.parquet:2: "
                                           r"corrupt_image.*set eval\.test_sets\.vqa_rad\.on_bad_row=skip"):
        run(cfg, tmp_path / "run")
    # on_bad_row=skip leaves it out and counts it under the set's name.
    skipped = Counter()
    skip = compose_config(SMALL_RUN + [f"cache_dir={tmp_path / 'cache'}", *sets, "eval.test_sets.vqa_rad.on_bad_row=skip"])
    _, test_sets = load_run_data(skip, True, skipped)
    assert [t.name for t in test_sets] == [None, "vqa_rad", "slake"] and len(test_sets[1].records) == 5
    assert skipped["vqa_rad/test/corrupt_image"] == 1


def test_an_empty_test_set_is_an_error_before_the_model_loads(tmp_path, monkeypatch):
    _must_not_load_the_model(monkeypatch)

    def all_closed(split, rows):
        for row in rows:
            row["answer"] = "yes"

    sets = _real_sets(tmp_path, rad_edit=all_closed)
    cfg = compose_config(SMALL_RUN + [f"cache_dir={tmp_path / 'cache'}", *sets, "eval.test_sets.vqa_rad.questions=open"])
    with pytest.raises(BadRowsError, match=r"eval\.test_sets\.vqa_rad: vqa_rad: the test split holds no question "
                                           r"\(eval\.test_sets\.vqa_rad\.questions=open; left out or skipped: \{'test/closed_question': 8\}"):
        run(cfg, tmp_path / "run")


@pytest.mark.parametrize("overrides,error,message", [
    (["+dataset@eval.test_sets.rad=no_such_dataset"], MissingConfigException, "dataset/no_such_dataset"),
    (["test_sets=no_such_list"], MissingConfigException, "test_sets/no_such_list"),
    # Two sets of one name: the default's synthetic_ood and another.
    (["+dataset@eval.test_sets.synthetic_ood=vqa_rad"], ConfigCompositionException, "Multiple values for "
                                                                                      "dataset@eval.test_sets.synthetic_ood"),
])
def test_an_unknown_or_twice_named_test_set_is_a_composition_error(overrides, error, message):
    with pytest.raises(error, match=message):
        compose_config(overrides)


@pytest.mark.parametrize("overrides,key", [
    (["+dataset@eval.test_sets.closed=vqa_rad"], "eval.test_sets.closed: 'closed' is the first part of an in-domain"),
    (["+dataset@eval.test_sets.accuracy=slake"], "eval.test_sets.accuracy: 'accuracy' is the first part"),
    (["+eval.test_sets.rad=vqa_rad"], "eval.test_sets.rad must be a dataset config"),
    (["eval.test_sets.synthetic_ood.shift=mri"], "eval.test_sets.synthetic_ood.shift must be null or one of"),
    (["eval.test_sets.synthetic_ood.test_size=0"], "eval.test_sets.synthetic_ood.test_size must be a positive"),
    (["+dataset@eval.test_sets.rad=vqa_rad", "eval.test_sets.rad.questions=some"], "eval.test_sets.rad.questions"),
    (["+dataset@eval.test_sets.rad=vqa_rad", "eval.test_sets.rad.name=mimic"], "eval.test_sets.rad.name must be"),
    (["eval.extra_test_size=0"], "eval.extra_test_size must be null"),
])
def test_a_bad_test_set_setting_fails_before_loading(overrides, key, tmp_path, monkeypatch):
    _must_not_load_the_model(monkeypatch)
    import medvqa_rl.run as run_module

    monkeypatch.setattr(run_module, "load_run_data", lambda *a, **k: pytest.fail("data loaded before the check"))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("(", r"\(")):
        run(compose_config(overrides + ["wandb.mode=disabled", f"cache_dir={tmp_path}"]), tmp_path / "run")


@pytest.mark.slow  # a CLI run: the slow tier
def test_the_cli_says_which_test_set_row_is_bad(tmp_path):
    sets = _real_sets(tmp_path, rad_edit=_corrupt_second_test_image)
    done = cli(["method=none", "test_sets=none", *sets, f"hydra.run.dir={tmp_path / 'run'}",
                f"cache_dir={tmp_path / 'cache'}", "wandb.mode=disabled"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Error: " in done.stderr and "test-00000-of-00001.parquet:2: corrupt_image" in done.stderr
    assert "Traceback" not in done.stderr and json.loads((tmp_path / "run" / "failure.json").read_text())["status"] == "failed"


def test_debug_smoke_shrinks_the_extra_test_sets_too(tmp_path):
    """debug=smoke caps every extra set (eval.extra_test_size): the 500 out-of-distribution questions become the
    first 32, the ids of the in-domain split's 32; a set already smaller keeps its size."""
    cfg = compose_config(["debug=smoke", f"cache_dir={tmp_path}"])
    _, sets = load_run_data(cfg, training=False, skipped=Counter())
    assert [(s.name, len(s.records)) for s in sets] == [(None, 32), ("synthetic_ood", 32)]
    assert [r["id"] for r in sets[1].records] == [r["id"] for r in sets[0].records]
    cfg = compose_config(["eval.extra_test_size=600", f"cache_dir={tmp_path}"])
    _, sets = load_run_data(cfg, training=False, skipped=Counter())
    assert [(s.name, len(s.records)) for s in sets] == [(None, 1000), ("synthetic_ood", 500)]


@pytest.mark.parametrize("overrides,recorded", [
    ([], "synthetic_ood"), (["test_sets=none"], "none"), (["test_sets=protocol"], "blind+circular+synthetic_ood"),
    (["test_sets=medical", "+dataset@eval.test_sets.ood=synthetic_ood"], "ood+path_vqa+slake+vqa_rad"),
])
def test_the_extra_test_sets_are_recorded_as_a_factor(overrides, recorded):
    from medvqa_rl.tracking import factor_choices

    assert factor_choices(compose_config(overrides))["test_sets"] == recorded
