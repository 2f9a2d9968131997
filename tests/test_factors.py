"""The four studied factors end to end: the trainer's effective arguments, the semantic reward in a run
with an HTTP judge, and the full 24-run factor grid through Hydra's multirun."""

from __future__ import annotations

import itertools
import json

import pytest
from omegaconf import OmegaConf

from medvqa_rl.data.splits import load_splits
from medvqa_rl.factors import STUDIED_FACTORS
from medvqa_rl.models.loading import load_init
from medvqa_rl.training.grpo import build_grpo_trainer, reward_functions

from .conftest import ONE_STEP_RUN, SMALL_RUN, SMALL_TINY, cli, compose_config
from .helpers.fake_chat_server import FakeChatServer


@pytest.mark.parametrize("bias,loss_type,scale_rewards", [("grpo", "grpo", "group"), ("dr_grpo", "dr_grpo", "none")])
def test_bias_reaches_the_trainer(bias, loss_type, scale_rewards, small_cfg, tmp_path):
    cfg = compose_config(SMALL_TINY + SMALL_RUN + [f"cache_dir={small_cfg.cache_dir}", f"bias={bias}",
                                                    "reward=semantic", "length_reward=cwr"])
    train, _ = load_splits(cfg.dataset)
    model, processor, _ = load_init(cfg)
    trainer = build_grpo_trainer(cfg, model, processor, reward_functions(cfg, processor.tokenizer),
                                 train, str(tmp_path / "trainer"), report_to="none")
    assert (trainer.loss_type, trainer.scale_rewards, trainer.beta) == (loss_type, scale_rewards, 0.1)
    assert [f.__name__ for f in trainer.reward_funcs] == ["accuracy", "format", "semantic", "cwr"]
    assert trainer.reward_weights.tolist() == [1.0, 0.5, 0.5, 0.5]


@pytest.mark.slow  # a CLI/multirun end-to-end run: the slow tier
def test_semantic_run_with_an_http_judge_never_writes_the_key(tiny_cache, tmp_path, monkeypatch):
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    server = FakeChatServer()
    secret = "sk-never-write-me-4242"
    try:
        run_dir = tmp_path / "run"
        overrides = [o for o in SMALL_RUN if not o.startswith("wandb.")] + SMALL_TINY + [
            "reward=semantic", "judge=openai", f"judge.base_url={server.url}", "judge.api_key_env=MEDVQA_JUDGE_KEY",
            "wandb.mode=offline", f"cache_dir={tiny_cache}", f"hydra.run.dir={run_dir}"]
        result = cli(overrides, tmp_path, env={"MEDVQA_JUDGE_KEY": secret})
    finally:
        server.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert server.requests > 0 and server.auth == {f"Bearer {secret}"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["factor/reward"], metrics["factor/judge"]) == ("semantic", "openai")
    assert metrics["eval/judge"] == "openai:BioMistral/BioMistral-7B (reward judge)"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any("wandb" in p.parts for p in files)
    leaks = [p for p in files if secret.encode() in p.read_bytes()]
    assert not leaks and secret not in result.stdout + result.stderr


# The paper's levels of each studied factor (reward=accuracy_f1 is ours, for open questions).
GRID = dict(zip(STUDIED_FACTORS, (["base", "instruct"], ["accuracy", "semantic"], ["none", "ecr", "cwr"],
                                  ["grpo", "dr_grpo"]), strict=True))


@pytest.mark.slow  # a CLI/multirun end-to-end run: the slow tier
def test_full_factor_grid_runs_all_24_combinations(tiny_cache, tmp_path):
    sweep_dir = tmp_path / "grid"
    result = cli(["-m", *(f"{g}={','.join(options)}" for g, options in GRID.items()), *SMALL_TINY, *ONE_STEP_RUN,
                   f"cache_dir={tiny_cache}", f"hydra.sweep.dir={sweep_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = [p.parent for p in sweep_dir.glob("*/metrics.json")]
    seen = []
    for run_dir in run_dirs:
        record = json.loads((run_dir / "metrics.json").read_text())
        choices = {g: record[f"factor/{g}"] for g in GRID}
        seen.append(tuple(choices.values()))
        assert record["train/steps"] == 1
        # The rule judge scores every synthetic run's reasoning (test/judge_score), and rewards the semantic arms.
        assert record["factor/judge"] == "rule" and "test/judge_score" in record
        assert record["eval/judge"] == "rule (reward judge)" if choices["reward"] == "semantic" else "rule"
        hydra_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")  # what the run was really given
        assert {g: hydra_cfg[g].name for g in GRID} == choices
    assert sorted(seen) == sorted(itertools.product(*GRID.values()))
