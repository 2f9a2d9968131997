"""eval.backend=vllm wiring, with a stand-in for vLLM's engine (vLLM itself is exercised by
benchmarks/vllm_agreement.py): which weights each evaluation's engine loads and what they find on disk, that the
scores come from the engine's completions, that the engine is not started when the init cache serves the
evaluation, and how vLLM's outputs become the generate path's (text, n_tokens) pairs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import medvqa_rl.config_checks as config_checks
import medvqa_rl.run as run_module
from medvqa_rl.models.generation import stop_token_ids
from medvqa_rl.evaluation.vllm_generation import completions_from, vllm_prompts
from medvqa_rl.models.loading import load_model_and_processor
from medvqa_rl.models.shipped_tiny import SHIPPED_DIR
from medvqa_rl.prompts import chat_prompt

from .conftest import SMALL_RUN, SMALL_TINY, compose_config


class StandInEngine:
    """Answers every question 'A', well-formed, and notes what it was started on and what that folder held."""

    started: list[dict] = []

    def __init__(self, checkpoint, **settings):
        self.checkpoint, self.settings, self._seen = checkpoint, settings, None

    def generate(self, processor, records, max_new_tokens, stop_ids, generation=None, progress=False):
        if self._seen is None:
            folder = Path(self.checkpoint)
            self._seen = {"checkpoint": self.checkpoint, "stop_ids": list(stop_ids), "generation": dict(generation),
                          "files": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []}
            StandInEngine.started.append(self._seen)
        return [("<think>the scan shows it</think><answer>A</answer>", 11)] * len(records)

    def close(self):
        pass


@pytest.fixture
def stand_in(monkeypatch):
    StandInEngine.started = []
    monkeypatch.setattr(run_module, "VLLMEvaluator", StandInEngine)
    monkeypatch.setattr(config_checks, "installed_vllm_version", lambda: "0.32.0")
    return StandInEngine


def test_a_vllm_evaluated_run_scores_the_engines_completions(stand_in, tiny_cache, tmp_path):
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [f"cache_dir={tiny_cache}", "eval.backend=vllm", "test_sets=none",
                                                   "method.max_steps=1", "method.per_device_train_batch_size=8",
                                                   "method.num_generations=4"])
    record = run_module.run(cfg, tmp_path / "run")
    init, trained = stand_in.started
    # the init's weights, then the trained model as saved, its processor already beside it
    assert init["checkpoint"] != trained["checkpoint"]
    assert trained["checkpoint"] == str(tmp_path / "run" / "model")
    assert {"model.safetensors", "config.json", "processor_config.json", "tokenizer.json"} <= set(trained["files"])
    # the generate path's stop tokens and our decoder, not the checkpoint's
    assert init["generation"] == {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.0,
                                  "no_repeat_ngram_size": 0}
    assert init["stop_ids"] == trained["stop_ids"] and init["stop_ids"]
    # every answer is 'A': accuracy is the share of questions whose label is A, format 100 %, 11 tokens each
    labels = [row["answer_label"] for row in _jsonl(tmp_path / "run" / "predictions.jsonl")]
    for prefix in ("test/", "init/test/"):
        assert record[prefix + "accuracy"] == pytest.approx(100 * labels.count("A") / len(labels))
        assert record[prefix + "format_rate"] == 100.0 and record[prefix + "completion_tokens"] == 11
    assert record["eval/backend"] == "vllm" and record["train/rollout_engine"] == "hf"


def test_no_engine_starts_when_the_init_evaluation_is_cached(stand_in, tiny_cache, tmp_path):
    """method=none on the init: the first run computes (or finds) the cached evaluation, the second only reads it."""
    shared = [o for o in SMALL_RUN if not o.startswith("method.")]  # method=none has no budget
    overrides = SMALL_TINY + shared + [f"cache_dir={tiny_cache}", "eval.backend=vllm", "test_sets=none", "method=none"]
    first = run_module.run(compose_config(overrides), tmp_path / "a")
    started = len(stand_in.started)
    second = run_module.run(compose_config(overrides), tmp_path / "b")
    assert started <= 1 and len(stand_in.started) == started and second["init/cached"]
    assert second["test/accuracy"] == first["test/accuracy"]


def test_vllm_outputs_become_the_generate_paths_pairs():
    """vLLM keeps the stop token in token_ids; the pair holds the tokens before it, decoded skipping specials."""
    model, processor = load_model_and_processor(str(SHIPPED_DIR / "instruct"))
    tokenizer = processor.tokenizer
    stops = stop_token_ids(model, processor)
    body = tokenizer("<think>a</think><answer>B</answer>", add_special_tokens=False)["input_ids"]

    def output(ids):
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids)])

    pad = tokenizer.pad_token_id
    pairs = completions_from([output(body + [stops[0]]), output(body), output(body + [pad, *body])], tokenizer, stops)
    assert pairs == [("<think>a</think><answer>B</answer>", len(body))] * 3


def test_vllm_gets_the_generate_paths_prompt_text():
    _, processor = load_model_and_processor(str(SHIPPED_DIR / "instruct"))
    from PIL import Image

    record = {"question": "Where?", "options": ["left", "right"], "image": Image.new("RGB", (64, 64))}
    (prompt,) = vllm_prompts(processor, [record])
    assert prompt["prompt"] == chat_prompt(processor, "Where?", ["left", "right"], record["image"])
    assert prompt["prompt"].count("<|image_pad|>") == 1 and prompt["multi_modal_data"] == {"image": record["image"]}


def _jsonl(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]
