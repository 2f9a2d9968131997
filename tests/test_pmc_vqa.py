"""PMC-VQA in its official layout, written under tmp_path: loading (images folder and images.zip),
prefix stripping, the seeded subset, validation of every bad-input case in both modes, and a 1-step
GRPO run through the CLI's run()."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medvqa_rl.data.splits import load_splits
from medvqa_rl.data.validation import BadRowsError
from medvqa_rl.run import run

from .conftest import SMALL_RUN, SMALL_TINY, compose_config

MISSING = "PMC_nowhere.jpg"  # a Figure_path whose image is never written
QUESTIONS = [
    ("What imaging modality is shown?", ["CT", "MRI", "X-ray", "Ultrasound"], "B"),
    ("Where is the lesion?", ["left lung", "right lung", "liver", "spleen"], "A"),
    ("How many nodules are seen?", ["one", "two", "three", "four"], "C"),
    ("What is the size of the mass?", ["small", "medium", "large", "none"], "D"),
]


def _row(i: int) -> dict:
    question, options, label = QUESTIONS[i % len(QUESTIONS)]
    answer = options["ABCD".index(label)]
    return {"Figure_path": f"PMC{i:04d}_Fig1.jpg", "Question": f"{question} (case {i})", "Answer": answer,
            **{f"Choice {l}": f" {l}:{o}" for l, o in zip("ABCD", options)}, "Answer_label": label}


def _image(path_or_buffer, seed: int, size=(64, 64)) -> None:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path_or_buffer, format="JPEG")


def write_pmc_vqa(root: Path, n_train=12, n_test=8, as_zip=False, edit=None) -> Path:
    """The official layout: train.csv / test.csv / test_clean.csv and images/ (or images.zip)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = {"train.csv": [_row(i) for i in range(n_train)], "test.csv": [_row(100 + i) for i in range(n_test)]}
    rows["test_clean.csv"] = rows["test.csv"][:4]
    if edit:
        edit(rows)
    paths = {r["Figure_path"] for split in rows.values() for r in split} - {MISSING}
    if as_zip:
        with zipfile.ZipFile(root / "images.zip", "w") as archive:
            for k, name in enumerate(sorted(paths)):
                with archive.open(f"images/{name}", "w") as handle:
                    _image(handle, k, size=(80, 48) if k % 3 == 0 else (64, 64))
    else:
        (root / "images").mkdir(exist_ok=True)
        for k, name in enumerate(sorted(paths)):
            _image(root / "images" / name, k, size=(80, 48) if k % 3 == 0 else (64, 64))
    for file_name, split in rows.items():
        pd.DataFrame(split).to_csv(root / file_name, index=False)
    return root


def _cfg(root: Path, *overrides: str):
    return compose_config(["dataset=pmc_vqa", f"dataset.path={root}", "dataset.train_size=100",
                           "dataset.test_size=100", *overrides])


@pytest.mark.parametrize("as_zip", [False, True])
def test_loads_the_official_layout(tmp_path, as_zip):
    root = write_pmc_vqa(tmp_path / "pmc", as_zip=as_zip)
    train, test = load_splits(_cfg(root).dataset)
    assert (len(train), len(test)) == (12, 8)
    first = train[0]
    assert first["options"] == ["CT", "MRI", "X-ray", "Ultrasound"]  # " A:CT" -> "CT"
    assert first["answer_label"] == "B" and first["answer_text"] == "MRI"
    assert first["question"].startswith("What imaging modality") and first["rationale"] == ""
    assert first["image"].mode == "RGB" and first["image"].size == (80, 48)
    assert {r["id"] for r in train}.isdisjoint({r["id"] for r in test})
    clean_train, clean_test = load_splits(_cfg(root, "dataset.test_file=test_clean.csv").dataset)
    assert len(clean_test) == 4


def test_seeded_subset(tmp_path):
    root = write_pmc_vqa(tmp_path / "pmc", n_train=30)
    pick = lambda seed: [r["id"] for r in load_splits(_cfg(root, "dataset.train_size=10", f"seed={seed}").dataset)[0]]
    assert len(pick(0)) == 10 and pick(0) == pick(0) and set(pick(0)) != set(pick(1))


def _missing_file(rows):
    rows["train.csv"][3]["Figure_path"] = MISSING


def _empty_question(rows):
    rows["train.csv"][3]["Question"] = "   "


def _label_not_in_options(rows):
    rows["train.csv"][3]["Answer_label"] = "E"


def _label_disagrees(rows):
    rows["train.csv"][3]["Answer"] = "something else"


def _duplicate(rows):
    rows["train.csv"][3] = dict(rows["train.csv"][2])


BAD_CASES = {
    "missing_image": _missing_file,
    "empty_question": _empty_question,
    "label_not_in_options": _label_not_in_options,
    "label_disagrees_with_answer": _label_disagrees,
    "duplicate_id": _duplicate,
}


def _corrupt(root: Path) -> None:
    (root / "images" / "PMC0003_Fig1.jpg").write_bytes(b"not a jpeg at all")


@pytest.mark.parametrize("reason", [*BAD_CASES, "corrupt_image"])
def test_bad_rows_error_names_file_and_line(tmp_path, reason):
    root = write_pmc_vqa(tmp_path / "pmc", edit=BAD_CASES.get(reason))
    if reason == "corrupt_image":
        _corrupt(root)
    with pytest.raises(BadRowsError, match=rf"train\.csv:5: {reason}"):  # row 3 of the data = line 5
        load_splits(_cfg(root).dataset)


@pytest.mark.parametrize("reason", [*BAD_CASES, "corrupt_image"])
def test_bad_rows_skip_mode_counts_them(tmp_path, reason):
    from collections import Counter

    root = write_pmc_vqa(tmp_path / "pmc", edit=BAD_CASES.get(reason))
    if reason == "corrupt_image":
        _corrupt(root)
    skipped = Counter()
    train, test = load_splits(_cfg(root, "dataset.on_bad_row=skip").dataset, skipped)
    assert len(train) == 11 and len(test) == 8
    assert skipped == {f"train/{reason}": 1}


def test_unknown_on_bad_row_is_a_config_error(tmp_path):
    from medvqa_rl.config_checks import ConfigError, check_config

    with pytest.raises(ConfigError, match=r"dataset\.on_bad_row"):
        check_config(_cfg(tmp_path, "dataset.on_bad_row=ignore"))


def test_one_grpo_step_on_the_pmc_vqa_layout(tiny_cache, tmp_path, monkeypatch):
    """The run reads its records from the record cache (built by an earlier load) and still reports the
    rows skipped when the cache was built."""
    import json
    from collections import Counter

    from medvqa_rl.data import splits

    root = write_pmc_vqa(tmp_path / "pmc", n_train=16, n_test=6,
                         edit=lambda rows: rows["test.csv"][1].update(Question=""))
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [
        f"cache_dir={tiny_cache}", "dataset=pmc_vqa", f"dataset.path={root}", "dataset.train_size=16",
        "dataset.test_size=6", "dataset.on_bad_row=skip", "method.max_steps=1"])
    load_splits(cfg.dataset, Counter(), cfg.cache_dir)

    def must_not_run(*args):
        raise AssertionError("the run validated the files again instead of reading the record cache")

    monkeypatch.setitem(splits.LOADERS, "pmc_vqa", must_not_run)
    record = run(cfg, tmp_path / "run")
    assert record["train/steps"] == 1 and record["factor/dataset"] == "pmc_vqa"
    assert record["data/skipped/test/empty_question"] == 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["data/skipped/test/empty_question"] == 1
    assert 0.0 <= record["test/accuracy"] <= 100.0 and "test/perplexity" in record
    # PMC-VQA has no reference rationale: the reasoning is compared with the gold answer's text.
    assert -1.0 <= record["test/similarity"] <= 1.0
    predictions = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert {p["similarity_reference"] for p in predictions} == {"answer_text"}
    assert record["factor/judge"] == "none"  # the rule judge needs ground-truth findings


@pytest.mark.parametrize("method", ["sft_lora", "dpo"])
def test_one_sft_or_dpo_step_on_the_pmc_vqa_layout(method, tiny_cache, tmp_path):
    """The baselines train on a real split's encoded images (TRL decodes them per row) and evaluate on it."""
    root = write_pmc_vqa(tmp_path / "pmc", n_train=16, n_test=6)
    cfg = compose_config(SMALL_TINY + [o for o in SMALL_RUN if not o.startswith("method.num_generations")] + [
        f"cache_dir={tiny_cache}", f"method={method}", "dataset=pmc_vqa", f"dataset.path={root}",
        "dataset.train_size=16", "dataset.test_size=6", "method.max_steps=1", "method.per_device_train_batch_size=8",
        "eval.similarity_model=null"])
    record = run(cfg, tmp_path / "run")
    assert record["train/steps"] == 1 and record["factor/method"] == method
    assert record["test/perplexity"] > 1.0 and 0.0 <= record["test/accuracy"] <= 100.0


def test_hub_id_resolves_through_the_hub_cache_at_the_pinned_revision(tmp_path, monkeypatch):
    import huggingface_hub

    root = write_pmc_vqa(tmp_path / "snapshot")
    calls = []

    def fake_snapshot_download(**kwargs):
        calls.append(kwargs)
        return str(root)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    train, _ = load_splits(_cfg("xmcmic/PMC-VQA", "dataset.revision=abc123").dataset)
    assert calls == [{"repo_id": "xmcmic/PMC-VQA", "repo_type": "dataset", "revision": "abc123"}]
    assert len(train) == 12


# ------------------------------------------------------------- the paper's overlay --

PAPER = "experiment=paper_qwen2vl_2b_pmcvqa"


def test_paper_overlay_states_the_published_setting(monkeypatch):
    from types import SimpleNamespace

    from medvqa_rl.config_checks import check_config
    from medvqa_rl.training import common

    # Under ZeRO-2 (fp32 master weights; plain DDP on the bf16 policy is refused, tests/test_batching.py) on 4 processes
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("WORLD_SIZE", "4")
    cfg = compose_config([PAPER])
    check_config(cfg)  # hub ids are valid model_init paths
    assert cfg.model_init.path == "Qwen/Qwen2-VL-2B-Instruct"
    assert (cfg.dataset.name, cfg.dataset.path) == ("pmc_vqa", "xmcmic/PMC-VQA")
    assert (cfg.dataset.train_size, cfg.dataset.test_size) == (10000, 7000)
    assert cfg.method.num_generations == 8 and cfg.method.beta > 0 and cfg.method.bf16
    assert cfg.judge.model == "BioMistral/BioMistral-7B"
    # On 4 processes: 8 completions x 2 accumulation steps x 4 GPUs = 8 questions per step, one epoch of 10K.
    monkeypatch.setattr(common, "PartialState", lambda: SimpleNamespace(num_processes=4))
    assert common.max_steps(cfg) == 1250
    # Factors still swap on top of it.
    swapped = compose_config([PAPER, "model_init=base", "bias=dr_grpo", "reward=semantic"])
    assert swapped.model_init.path == "Qwen/Qwen2-VL-2B" and swapped.bias.loss_type == "dr_grpo"


# Each method's resolved values under the paper overlay: (lr, beta, LoRA on, scheduler).
PAPER_METHODS = {
    "grpo": (1.0e-6, 0.04, False, "linear"),
    "sft_full": (1.0e-5, None, False, "cosine"),
    "sft_lora": (1.0e-4, None, True, "cosine"),
    "dpo": (5.0e-6, 0.1, False, "cosine"),
}


@pytest.mark.parametrize("method", sorted(PAPER_METHODS))
def test_paper_overlay_gives_each_method_its_own_setting_in_any_order(method):
    """The overlay sets GRPO's values for GRPO only; each baseline keeps its identity (LoRA for sft_lora) and its
    own documented lr/beta, and every order of experiment, method, sweep and a value override composes the same."""
    import itertools

    from omegaconf import OmegaConf

    parts = [PAPER, f"method={method}", "sweep=methods", "method.logging_steps=5"]
    resolved = {OmegaConf.to_yaml(compose_config(list(order))) for order in itertools.permutations(parts)}
    assert len(resolved) == 1
    cfg = compose_config(parts)
    lr, beta, lora, scheduler = PAPER_METHODS[method]
    assert (cfg.method.learning_rate, cfg.method.get("beta"), cfg.method.lora.enabled) == (lr, beta, lora)
    assert cfg.method.lr_scheduler_type == scheduler and cfg.method.name == method
    assert cfg.budget.examples == 10000 and cfg.method.max_completion_length == 512 and cfg.method.bf16
    assert cfg.method.logging_steps == 5  # the command line's value wins over the overlay's


def test_paper_overlay_runs_end_to_end_with_the_tiny_model_and_a_small_pmc_vqa(tiny_cache, tiny_lm_dir, tmp_path):
    """Only paths, sizes, the budget and what a CPU lacks (bf16, cuda: fp32 weights, as one process needs) are swapped."""
    root = write_pmc_vqa(tmp_path / "pmc", n_train=16, n_test=6)
    instruct = next(Path(tiny_cache).glob("tiny-*/instruct"))
    cfg = compose_config([PAPER, f"model_init.path={instruct}", f"dataset.path={root}", "dataset.train_size=16",
                          "dataset.test_size=6", "budget.examples=2", "method.bf16=false", "model_init.dtype=float32",
                          f"judge.model={tiny_lm_dir}",
                          "judge.device=cpu", "judge.dtype=float32", "judge.yes_token=Yes", "judge.no_token=No",
                          "wandb.mode=disabled"])
    record = run(cfg, tmp_path / "run")
    assert record["train/steps"] == 1 and record["factor/dataset"] == "pmc_vqa"
    assert record["factor/judge"] == "hf" and 0.0 <= record["test/judge_score"] <= 100.0
    assert 0.0 <= record["test/accuracy"] <= 100.0 and "test/perplexity" in record
