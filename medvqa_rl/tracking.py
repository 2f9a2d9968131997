"""W&B mirror of the run record. Optional: the local record never depends on it.

Dashboard conventions: group = the sweep, job_type = the method, every factor a top-level config key
(`factor/<group>`) and a tag (`<group>=<choice>`); TRL logs the per-step training metrics; the
summary holds the final metrics; `test/predictions` is a Table of sample predictions."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from medvqa_rl.data.questions import gold_answer
from medvqa_rl.data.splits import reward_columns
from medvqa_rl.factors import RECORDED_GROUPS
from medvqa_rl.judges.selection import judge_backend


def factor_choices(cfg: DictConfig) -> dict[str, str]:
    """The chosen option of every config group, plus the judge back end (reward and/or judge score; or "none")."""
    return {f: str(cfg[f].name) for f in RECORDED_GROUPS} | {"judge": judge_backend(cfg)}


WANDB_ID_FILE = "wandb_run_id.txt"


def wandb_run_id(run_dir: str | Path, fingerprint: str, resume_from=None) -> str:
    """The W&B run id of this run dir's attempt: kept in the run dir, so a resumed attempt continues the same
    W&B run; a fresh start (its earlier record set aside) gets a new one: a digest of the run dir and the
    config, and a random suffix (W&B would drop a restarted run's steps below the ones it already has)."""
    path = Path(run_dir) / WANDB_ID_FILE
    if resume_from is not None and path.is_file():
        return path.read_text().strip()
    digest = hashlib.sha256(f"{Path(run_dir).resolve()}|{fingerprint}".encode()).hexdigest()[:12]
    run_id = f"{digest}-{secrets.token_hex(3)}"
    path.write_text(run_id + "\n")
    return run_id


def start_wandb(cfg: DictConfig, run_dir: str, run_id: str | None = None):
    """Starts (or, with the id of an earlier attempt, continues) a W&B run (offline by default) carrying the
    resolved config; None when disabled."""
    if cfg.wandb.mode == "disabled":
        return None
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    config = OmegaConf.to_container(cfg, resolve=True)
    choices = factor_choices(cfg)
    config.update({f"factor/{f}": choice for f, choice in choices.items()})
    return wandb.init(
        mode=cfg.wandb.mode,
        project=cfg.wandb.project,
        entity=cfg.wandb.entity,
        group=cfg.wandb.group,
        job_type=cfg.method.name,
        tags=[f"{f}={choice}" for f, choice in choices.items()] + list(cfg.wandb.tags),
        config=config,
        dir=run_dir,
        id=run_id,
        resume="allow" if run_id else None,
        reinit="finish_previous",
    )


def reward_values(rewards: list, predictions: list[dict], records: list[dict]) -> dict[str, list[float]]:
    """Each GRPO reward function's value for each greedy test completion, called as TRL calls it."""
    if not rewards:
        return {}
    completions = [[{"role": "assistant", "content": p["completion"]}] for p in predictions]
    columns = [reward_columns(r) for r in records]
    kwargs = {key: [c[key] for c in columns] for key in columns[0]}
    return {fn.__name__: list(fn(completions=completions, **kwargs)) for fn in rewards}


def predictions_table(predictions: list[dict], records: list[dict], rewards: list, rows: int):
    """A W&B Table of the first `rows` test predictions: image, question, completion, rewards, correct."""
    import wandb

    predictions, records = predictions[:rows], records[:rows]
    rewards_by_name = reward_values(rewards, predictions, records)
    columns = ["id", "image", "question", "options", "answer", "completion", "parsed_answer", "correct",
               *(f"reward/{name}" for name in rewards_by_name), "judge_verdict", "similarity"]
    table = wandb.Table(columns=columns)
    for i, (p, r) in enumerate(zip(predictions, records, strict=True)):
        table.add_data(p["id"], wandb.Image(r["image"]), p["question"], " | ".join(p["options"]), gold_answer(p),
                       p["completion"], p["parsed_answer"], p["correct"],
                       *(values[i] for values in rewards_by_name.values()),
                       p.get("judge_verdict"), p.get("similarity"))
    return table


def finish_wandb(run, metrics: dict, predictions=None) -> None:
    """Final metrics into the summary (the dashboard's columns), the predictions Table, then finish."""
    run.summary.update(metrics)
    if predictions is not None:
        run.log({"test/predictions": predictions})
    run.finish()
