"""The W&B mirror: dashboard conventions on a real (offline) run and the Table of sample predictions."""

from __future__ import annotations

import wandb

from medvqa_rl.data.synthetic import make_split
from medvqa_rl.rewards.accuracy import AccuracyReward
from medvqa_rl.rewards.format import FormatReward
from medvqa_rl.tracking import predictions_table, reward_values, start_wandb

from .conftest import compose_config


def _predictions(records: list[dict]) -> list[dict]:
    """Record 0 answered right, record 1 wrong, record 2 out of format."""
    completions = [
        f"<think>{records[0]['rationale']}</think><answer>{records[0]['answer_label']}</answer>",
        "<think>no idea</think><answer>{}</answer>".format("B" if records[1]["answer_label"] != "B" else "C"),
        records[2]["answer_label"],
    ]
    return [{"id": r["id"], "question": r["question"], "options": r["options"], "answer_label": r["answer_label"],
             "completion": c, "parsed_answer": None, "correct": i == 0, "judge_verdict": 1.0, "similarity": 0.5}
            for i, (r, c) in enumerate(zip(records, completions))]


def test_reward_values_score_each_prediction_as_trl_would():
    records = make_split("test", 3, seed=0)
    values = reward_values([AccuracyReward(), FormatReward()], _predictions(records), records)
    assert values == {"accuracy": [1.0, 0.0, 0.0], "format": [1.0, 1.0, 0.0]}
    assert reward_values([], _predictions(records), records) == {}


def test_predictions_table_has_images_rewards_and_correct(tmp_path):
    records = make_split("test", 3, seed=0)
    table = predictions_table(_predictions(records), records, [AccuracyReward(), FormatReward()], rows=2)
    assert table.columns == ["id", "image", "question", "options", "answer", "completion", "parsed_answer",
                             "correct", "reward/accuracy", "reward/format", "judge_verdict", "similarity"]
    assert len(table.data) == 2  # wandb.table_rows caps it
    first = dict(zip(table.columns, table.data[0]))
    assert isinstance(first["image"], wandb.Image)
    assert (first["correct"], first["reward/accuracy"], first["reward/format"]) == (True, 1.0, 1.0)


def test_run_carries_group_job_type_factor_keys_and_tags(tmp_path):
    cfg = compose_config(["sweep=bias", "bias=dr_grpo", "method=sft_lora", "wandb.mode=offline"])
    run = start_wandb(cfg, str(tmp_path))
    try:
        assert (run.group, run.job_type) == ("bias-v1", "sft_lora")
        assert run.config["factor/bias"] == "dr_grpo" and run.config["factor/model_init"] == "instruct"
        assert {"bias=dr_grpo", "method=sft_lora", "reward=accuracy", "judge=rule"} <= set(run.tags)
        assert run.config["sweep"]["name"] == "bias" and run.config["seed"] == 0
    finally:
        run.finish()


def test_a_resumed_attempt_continues_the_same_wandb_run(tmp_path):
    """The W&B id lives in the run dir: a resumed attempt reads it back and continues that run (resume="allow");
    a fresh start (its earlier record set aside) gets a new one, so its step 0 is not dropped by W&B."""
    from medvqa_rl.tracking import wandb_run_id

    first = wandb_run_id(tmp_path, "fp")
    assert wandb_run_id(tmp_path, "fp", resume_from=tmp_path / "trainer" / "checkpoint-2") == first
    cfg = compose_config(["wandb.mode=offline"])
    run = start_wandb(cfg, str(tmp_path), first)
    try:
        assert run.id == first
    finally:
        run.finish()
    again = start_wandb(cfg, str(tmp_path), first)  # the retry of a killed attempt
    try:
        assert again.id == first
    finally:
        again.finish()
    (tmp_path / "wandb_run_id.txt").unlink()  # set aside with the earlier record on a fresh start
    assert wandb_run_id(tmp_path, "fp") != first
