"""A default run prints no warning caused by our own calls (processor kwargs, deprecated argument names), with
every Python warning shown (PYTHONWARNINGS=always). A new warning fails this test until it is fixed or, when
a library raises it on its own, listed below with where it comes from."""

from __future__ import annotations

import json
import re

from .conftest import ONE_STEP_RUN, cli

# Warnings that libraries raise on their own, whatever we pass.
NOT_OURS = {
    # The vLLM stack only (docs/paper_setting.md#vllm-rollouts). TRL 1.16's GRPO imports trl.generation, which imports
    # vLLM whenever it is installed and warns that 0.32 is outside its 0.22-0.31 (the config checks accept only 0.32).
    "trl (vLLM stack)": re.compile(r"TRL currently supports vLLM versions from 0\.22\.0 to 0\.31\.0\. "
                                   r"You have version 0\.32\.\d+\S* installed"),
    # ... and vLLM's import compiles with torch.compile, whose inductor imports torch/utils/mkldnn.py (torch 2.13).
    "torch (vLLM stack)": re.compile(r"`torch\.jit\.script_method` is deprecated"),
}
# A Python warning ("file:line: FutureWarning: ..."), a transformers logger warning ("[transformers] ..."), or a
# logged WARNING in Hydra's job log format ("[time][logger][WARNING] - ...").
WARNING_LINE = re.compile(r"\w+Warning: |^\[transformers\] |\]\[WARNING\] - ")


def test_a_default_run_prints_no_warning_of_ours(tmp_path):
    # The default's out-of-distribution test set too, at 4 questions.
    done = cli([*ONE_STEP_RUN, "test_sets=synthetic", "eval.test_sets.synthetic_ood.test_size=4",
                f"hydra.run.dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}", "eval.progress=false"],
               cwd=tmp_path, env={"PYTHONWARNINGS": "always"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    warnings = [line for line in lines if WARNING_LINE.search(line)]
    ours = [line for line in warnings if not any(pattern.search(line) for pattern in NOT_OURS.values())]
    assert ours == []
    # The evaluation's decoder is recorded with the run.
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {key: value for key, value in record.items() if key.startswith("eval/generation/")} == {
        "eval/generation/do_sample": False, "eval/generation/num_beams": 1,
        "eval/generation/repetition_penalty": 1.0, "eval/generation/no_repeat_ngram_size": 0}
    assert record["eval/max_new_tokens"] == 8
    assert "test/synthetic_ood/accuracy" in record and "init/test/synthetic_ood/accuracy" in record
