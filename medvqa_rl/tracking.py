"""W&B mirror of the run record. Optional: the local record never depends on it, and W&B never decides whether
a run happens: no API key for wandb.mode=online stops the run before anything loads (wandb_key_error, called by
the config checks); a server that cannot be reached within wandb.init_timeout seconds leaves the run logging
offline, with one warning saying where the files are and how to upload them; a failure at finish is a warning.

Dashboard conventions: group = the sweep, job_type = the method, every factor a top-level config key
(`factor/<group>`) and a tag (`<group>=<choice>`); TRL logs the per-step training metrics; the
summary holds the final metrics; `test/predictions` is a Table of sample predictions."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from medvqa_rl.bookkeeping.question_outcomes import WANDB_KEY, local_predictions, outcome_table_rows
from medvqa_rl.bookkeeping.run_record import read_jsonl
from medvqa_rl.questions import gold_answer
from medvqa_rl.data.splits import reward_columns
from medvqa_rl.factors import RECORDED_GROUPS, kl_level, extra_sets_level
from medvqa_rl.judges.selection import judge_backend

log = logging.getLogger(__name__)
DEFAULT_HOST = "https://api.wandb.ai"
_UNREACHABLE: set[str] = set()  # W&B hosts this process could not reach


def factor_choices(cfg: DictConfig) -> dict[str, str]:
    """The chosen option of every config group, plus the judge back end (reward and/or judge score; or "none"),
    GRPO's KL weight and the extra test sets (factor/beta, factor/test_sets: medvqa_rl/factors.py)."""
    return ({f: str(cfg[f].name) for f in RECORDED_GROUPS} | {"judge": judge_backend(cfg)}
            | {"beta": kl_level(cfg.method), "test_sets": extra_sets_level(cfg.eval)})


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


def wandb_key_error(cfg: DictConfig) -> str | None:
    """Why wandb.mode=online cannot log (no API key for the server), or None. Looked up as wandb does: the
    WANDB_API_KEY / WANDB_IDENTITY_TOKEN_FILE environment, else the netrc entry of the server's host."""
    if cfg.wandb.mode != "online" or os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return None
    host = os.environ.get("WANDB_BASE_URL", DEFAULT_HOST)
    try:
        import netrc

        if netrc.netrc(os.environ.get("NETRC")).authenticators(urlparse(host).hostname or host):
            return None
    except (OSError, netrc.NetrcParseError):
        pass
    return (f"wandb.mode=online: no W&B API key for {host} (set WANDB_API_KEY or run `wandb login`), or choose "
            "wandb.mode=offline (upload later with `wandb sync`) or wandb.mode=disabled")


def start_wandb(cfg: DictConfig, run_dir: str, run_id: str | None = None, config: dict | None = None):
    """Starts (or, with the id of an earlier attempt, continues) a W&B run (offline by default) carrying the
    resolved config (plus `config`); None when disabled. Online, a server that does not answer within
    wandb.init_timeout seconds leaves the run logging offline (one warning)."""
    if cfg.wandb.mode == "disabled":
        return None
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    choices = factor_choices(cfg)
    settings = dict(
        project=cfg.wandb.project,
        entity=cfg.wandb.entity,
        group=cfg.wandb.group,
        job_type=cfg.method.name,
        tags=[f"{f}={choice}" for f, choice in choices.items()] + list(cfg.wandb.tags),
        config=OmegaConf.to_container(cfg, resolve=True) | {f"factor/{f}": c for f, c in choices.items()} | (config or {}),
        dir=run_dir,
        id=run_id,
        resume="allow" if run_id else None,
        reinit="finish_previous",
    )
    host = os.environ.get("WANDB_BASE_URL", DEFAULT_HOST)
    if cfg.wandb.mode != "online" or host in _UNREACHABLE:
        return wandb.init(mode="offline" if cfg.wandb.mode == "online" else cfg.wandb.mode, **settings)
    try:
        return wandb.init(mode="online", settings=wandb.Settings(init_timeout=cfg.wandb.init_timeout), **settings)
    except wandb.errors.Error as error:
        _UNREACHABLE.add(host)  # later runs of this process (a failure record, the next grid point) go offline at once
        log.warning("W&B server %s not reachable within wandb.init_timeout=%ss (%s); logging offline to %s/wandb/ "
                    "instead: upload with `wandb sync %s/wandb/offline-run-*`", host, cfg.wandb.init_timeout,
                    str(error).splitlines()[0], run_dir, run_dir)
        wandb.teardown()  # the failed attempt still holds the run id in wandb's service
        return wandb.init(mode="offline", **settings)


def finish_safely(run, metrics: dict, predictions=None, outcomes: dict | None = None) -> None:
    """finish_wandb, never raising: the local record is already written and stands. predictions: a Table, or
    a function that makes one (its failure is caught too); outcomes: every test set's prediction rows."""
    try:
        finish_wandb(run, metrics, predictions() if callable(predictions) else predictions, outcomes)
    except Exception as error:  # noqa: BLE001 - any W&B failure here must not turn a finished run into a failed one
        log.warning("W&B could not finish the run (%s: %s); the local record in %s is complete", type(error).__name__,
                    error, getattr(run, "dir", "the run directory"))


def mirror_copied_run(cfg: DictConfig, run_dir: Path, record: dict) -> None:
    """A W&B run for a record copied from another sweep (medvqa_rl/reuse/shared_arms.py), so the W&B side of this
    sweep has the arm too: config `reused_from`, the copied history (train/ keys, as TRL logs them) and the
    record as its summary. Best effort, like every W&B call after the record is written."""
    if cfg.wandb.mode == "disabled":
        return
    try:
        run = start_wandb(cfg, str(run_dir), wandb_run_id(run_dir, record.get("config_fingerprint", "")),
                          config={"reused_from": record["reused_from"]})
        history = Path(run_dir) / "history.jsonl"
        rows = read_jsonl(history) if history.exists() else []
        for row in rows:
            if "step" in row:
                run.log({f"train/{k}": v for k, v in row.items() if k != "step"} | {"train/global_step": row["step"]})
    except Exception as error:  # noqa: BLE001 - the local copy is the record
        log.warning("could not start a W&B run for the copied record in %s (%s: %s)", run_dir, type(error).__name__,
                    error)
        return
    finish_safely(run, record, outcomes=local_predictions(run_dir))


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


def outcomes_table(predictions: dict):
    """A W&B Table of every question's outcome in every test set ({set name or None: prediction rows}): what the
    question-level paired tests read (analysis/question_level.py); test/predictions shows only a sample."""
    import wandb

    columns, rows = outcome_table_rows(predictions)
    return wandb.Table(columns=columns, data=rows)


def finish_wandb(run, metrics: dict, predictions=None, outcomes: dict | None = None) -> None:
    """Final metrics into the summary (the dashboard's columns), the predictions Table (a sample, with images),
    the outcomes Table (every question), then finish."""
    run.summary.update(metrics)
    logged = {} if predictions is None else {"test/predictions": predictions}
    if outcomes:
        logged[WANDB_KEY] = outcomes_table(outcomes)
    if logged:
        run.log(logged)
    run.finish()
