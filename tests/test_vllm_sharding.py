"""eval.backend=vllm under several processes: each process starts its own engine (vLLM's external_launcher, as
TRL's colocate mode does) and generates its contiguous share of the test questions; the main process scores
every question once, as one process would. vLLM itself is replaced by a stand-in module in the worker (the real
engine is exercised by benchmarks/vllm_agreement.py), so this runs on both stacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import SMALL_RUN, SMALL_TINY

# Run as `python worker.py <overrides>` or under torchrun: a stand-in `vllm` module whose engine writes what it was
# started with and which prompts it got (ENGINE_LOG/<rank>.json), answers 'A' to everything, then the real CLI.
WORKER = r'''
import json, os, sys, types
from pathlib import Path
from types import SimpleNamespace

class LLM:
    def __init__(self, **kwargs):
        from transformers import AutoTokenizer
        self.kwargs = kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(kwargs["model"])
        self.prompts = []

    def generate(self, prompts, params, use_tqdm=False):
        self.prompts += [p["prompt"] for p in prompts]
        log = Path(os.environ["ENGINE_LOG"]) / f"{os.environ.get('RANK', '0')}.json"
        seen = {key: value for key, value in self.kwargs.items() if isinstance(value, (str, int, float))}
        log.write_text(json.dumps({"kwargs": seen, "prompts": self.prompts, "max_tokens": params.max_tokens}))
        ids = self.tokenizer("<think>a</think><answer>A</answer>", add_special_tokens=False)["input_ids"]
        return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids)]) for _ in prompts]

class SamplingParams:
    def __init__(self, max_tokens, **settings):
        self.max_tokens, self.settings = max_tokens, settings

import runpy
import medvqa_rl.config_checks as config_checks  # first: TRL looks for vLLM as it is imported

vllm = types.ModuleType("vllm")  # what `from vllm import LLM, SamplingParams` finds when an engine starts
vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
sys.modules["vllm"] = vllm
config_checks.installed_vllm_version = lambda: "0.32.0"
runpy.run_module("medvqa_rl", run_name="__main__", alter_sys=True)  # as `python -m medvqa_rl`
'''


def test_each_process_generates_its_share_with_its_own_engine(tiny_cache, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    shared = [o for o in SMALL_RUN if not o.startswith("method.") and not o.startswith("dataset.test_size")]
    args = [*SMALL_TINY, *shared, "method=none", "dataset.test_size=9", "eval.backend=vllm",
            f"cache_dir={tiny_cache}"]  # the init evaluation's cache key holds the process count: both generate
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    runs = {}
    for processes in (1, 2):
        run_dir, engine_log = tmp_path / f"p{processes}", tmp_path / f"engines{processes}"
        engine_log.mkdir()
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"] if processes == 2
                    else [sys.executable])
        result = subprocess.run([*launcher, str(worker), *args, f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                                env={**env, "ENGINE_LOG": str(engine_log)}, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        engines = {int(p.stem): json.loads(p.read_text()) for p in engine_log.glob("*.json")}
        predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
        runs[processes] = engines, predictions, json.loads((run_dir / "metrics.json").read_text())
    single, one_predictions, one_record = runs[1]
    (one,) = single.values()
    engines, predictions, record = runs[2]
    # one engine per process, each on its own device through vLLM's external launcher; one process: vLLM's default
    assert sorted(engines) == [0, 1]
    assert all(e["kwargs"]["distributed_executor_backend"] == "external_launcher" for e in engines.values())
    assert "distributed_executor_backend" not in one["kwargs"]
    # contiguous shares in rank order that cover the questions once: the single process's prompts, split 4 + 5
    assert engines[0]["prompts"] + engines[1]["prompts"] == one["prompts"] and len(one["prompts"]) == 9
    assert len(engines[0]["prompts"]) == 4
    # every question scored once, in order, as one process scores it
    assert [p["id"] for p in predictions] == [p["id"] for p in one_predictions] and len(predictions) == 9
    assert predictions == one_predictions
    labels = [p["answer_label"] for p in predictions]
    assert record["test/accuracy"] == one_record["test/accuracy"] == 100 * labels.count("A") / 9
    assert (record["eval/backend"], record["train/processes"]) == ("vllm", 2)
