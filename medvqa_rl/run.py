"""One run: data, model, trainer, train (or resume), evaluate, record, keep the trained model. method=none is the
evaluation-only run: data, model, evaluate, record."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig
from transformers import set_seed

from medvqa_rl.bookkeeping.checkpoints import (ChecksumManifest, checkpoint_step, mark_trainer_dir,
                                              remove_checkpoints, trainer_dir)
from medvqa_rl.config_checks import check_config
from medvqa_rl.data.synthetic import is_synthetic
from medvqa_rl.data.test_sets import TestSet, load_run_data
from medvqa_rl.distributed import process_state
from medvqa_rl.evaluation import ReasoningSimilarity, evaluate
from medvqa_rl.evaluation.vllm_generation import VLLMEvaluator
from medvqa_rl.bookkeeping.init_cache import init_eval_key, read_cached_init_eval, write_cached_init_eval
from medvqa_rl.judges.selection import evaluation_judge, evaluation_judge_name
from medvqa_rl.models.loading import load_init
from medvqa_rl.reasoning_formats import reasoning_format
from medvqa_rl.bookkeeping.provenance import PREFIX, init_identity, reuse_key, run_provenance
from medvqa_rl.bookkeeping.run_record import (
    MODEL_DIR,
    package_versions,
    read_init_record,
    write_init_record,
    write_jsonl,
    write_metrics,
    write_resolved_config,
)
from medvqa_rl.tracking import factor_choices, finish_safely, predictions_table, start_wandb, wandb_run_id
from medvqa_rl.training import NO_TRAINING, build_trainer
from medvqa_rl.training.common import batch_description, examples_per_step
from medvqa_rl.training.grpo import reward_functions
from medvqa_rl.training.objectives import resolved_objective
from medvqa_rl.training.preemption import PreemptionCallback, preemptible, raise_if_stopped
from medvqa_rl.training.resume import restore_checkpoint_weights, restore_finished_training, training_finished_at

log = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: str | Path, resume_from: str | Path | None = None,
        provenance: dict | None = None) -> dict:
    """Trains and evaluates one configuration; writes metrics.json and predictions under run_dir.

    Returns the flat metrics: test/* after training and init/test/* before it (rates in percent 0-100), on the
    dataset's test split and, as test/<name>/*, on each of eval.test_sets (medvqa_rl/data/test_sets.py).
    method=none trains nothing: the init checkpoint's evaluation is the record (test/* = init/test/*).
    With resume_from (a checkpoint of this config, medvqa_rl/reuse/resumable.py), training continues from it
    and the init evaluation already recorded is reused; otherwise an init evaluation cached for the same
    init and settings is (medvqa_rl/bookkeeping/init_cache.py). Under `accelerate launch` / torchrun every
    process trains and generates its share of each evaluation; the main one scores it, records and logs
    (the others return an empty dict). provenance: what produced the numbers (medvqa_rl/bookkeeping/provenance.py; computed
    when not given), recorded as provenance/*, with the init's identity taken again once it is loaded (a hub
    id's revision resolves on its first download).
    SIGTERM / SIGUSR2 anywhere in it: a checkpoint at the step's end if training, then Preempted
    (medvqa_rl/training/preemption.py).
    """
    preemption = PreemptionCallback()
    with preemptible(preemption):  # one handler for the whole run, the evaluations before and after training too
        return _run(cfg, run_dir, resume_from, provenance, preemption)


def _run(cfg: DictConfig, run_dir: str | Path, resume_from, provenance: dict | None,
         preemption: PreemptionCallback) -> dict:
    started = time.time()
    check_config(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    state = process_state()

    training = cfg.method.trainer != NO_TRAINING
    skipped = Counter()
    # Every test set is validated before the model loads: a bad row or an empty set fails in seconds.
    train_records, test_sets = load_run_data(cfg, training, skipped)
    test_records = test_sets[0].records  # the in-domain test split
    model, processor, checkpoint = load_init(cfg)
    provenance = dict(provenance or run_provenance(cfg, state.num_processes, checkpoint))
    provenance[PREFIX + "init"], provenance[PREFIX + "init/source"] = init_identity(cfg, checkpoint)
    fingerprint, key = provenance[PREFIX + "config"], reuse_key(provenance)
    # Rewards and judge before the init eval: a judge that cannot start should fail the run early.
    rewards = reward_functions(cfg, processor.tokenizer) if cfg.method.trainer == "grpo" else []
    main_process = state.is_main_process
    wandb_run = start_wandb(cfg, str(run_dir), wandb_run_id(run_dir, fingerprint, resume_from)) if main_process else None
    # The judge and the similarity model live on the main process, which scores the gathered evaluation.
    # Neither in a format without reasoning (reasoning=none): nothing to judge or compare, so no such metric.
    has_reasoning = reasoning_format(cfg.reasoning.name).has_reasoning
    judge = evaluation_judge(cfg, rewards) if main_process and has_reasoning else None
    similarity = (ReasoningSimilarity(cfg.eval.similarity_model, cfg.eval.similarity_device)
                  if main_process and cfg.eval.similarity_model and has_reasoning else None)

    def evaluate_set(policy, test_set: TestSet, engine) -> tuple[dict, list[dict]] | tuple[None, None]:
        """One test set's metrics and predictions (main process); every process takes a share."""
        return evaluate(policy, processor, test_set.records, batch_size=cfg.eval.batch_size,
                        max_new_tokens=cfg.eval.max_new_tokens,
                        similarity=None if circular(test_set) else similarity,  # one per question, not rotation
                        judge=judge if judge_applies(judge, test_set) else None,
                        progress=cfg.eval.progress and main_process, generation=cfg.eval.generation, engine=engine,
                        reasoning=cfg.reasoning.name, **sampled_settings(cfg, test_set))

    # eval.backend=vllm: an engine on the init's weights, started only if the init evaluation is not reused
    init_engine = vllm_evaluator(cfg, checkpoint, cfg.model_init.get("revision"))
    init_metrics, init_predictions, init_cached = init_evaluation(
        cfg, run_dir, provenance, resume_from, test_sets, lambda test_set: evaluate_set(model, test_set, init_engine))
    if init_engine is not None:
        init_engine.close()
    if main_process:
        for test_set in test_sets:
            log.info("init: %s accuracy %.1f%%, format %.1f%%", test_set.label,
                     init_metrics[test_set.prefix + "accuracy"], init_metrics[test_set.prefix + "format_rate"])
        log.info("init evaluation %s", "reused" if init_cached else "computed")
        if wandb_run is not None and not resume_from:
            wandb_run.log({f"init/test/{k}": v for k, v in init_metrics.items()}, step=0)
        if training:
            mark_trainer_dir(run_dir, key)

    if training:
        set_seed(cfg.seed)
        trainer = build_trainer(cfg, model, processor, rewards, train_records, str(trainer_dir(run_dir)),
                                report_to="wandb" if wandb_run is not None else "none")
        if main_process:
            log.info("%s; %d steps", batch_description(cfg.method), trainer.args.max_steps)
        state.wait_for_everyone()
        trainer.add_callback(preemption)
        trainer.add_callback(ChecksumManifest())  # flushes each checkpoint and writes its checksums
        if resume_from:
            restore_checkpoint_weights(trainer, str(resume_from))
        judged_before = judge_counts(rewards)
        if resume_from and training_finished_at(str(resume_from), trainer.args.max_steps):
            restore_finished_training(trainer, str(resume_from))  # train() would run one step too many
        else:
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        raise_if_stopped(preemption)  # stopped on SIGTERM at a step's end: no evaluation of a half-trained model
        judged_in_training = [after - before for before, after in zip(judged_before, judge_counts(rewards))]
        if cfg.save_model:  # every process: sharded (ZeRO-3, FSDP) weights are gathered for the save
            trainer.save_model(str(run_dir / MODEL_DIR))
            if main_process:  # before the evaluation: eval.backend=vllm loads model/ with its processor
                processor.save_pretrained(run_dir / MODEL_DIR)
            state.wait_for_everyone()
        if cfg.method.push_to_hub:
            trainer.push_to_hub()
        # eval.backend=vllm: an engine on the trained weights as saved (config checks require save_model, no LoRA)
        engine = vllm_evaluator(cfg, str(run_dir / MODEL_DIR))
        metrics, predictions = {}, {}
        for test_set in test_sets:
            set_metrics, predictions[test_set.name] = evaluate_set(trainer.model, test_set, engine)
            metrics |= prefixed(test_set, set_metrics or {})
        if engine is not None:
            engine.close()
        steps, history, per_step = trainer.state.global_step, trainer.state.log_history, examples_per_step(cfg.method)
        objective = resolved_objective(trainer) if cfg.method.trainer == "grpo" else {}
    else:  # method=none: the same model and decoder, so its init evaluation is its evaluation
        metrics, predictions, steps, history, per_step = init_metrics, init_predictions, 0, [], 0
        objective = {}
    if not main_process:
        return {}

    for test_set in test_sets:
        log.info("%s: %s accuracy %.1f%% (init %.1f%%)", "trained" if training else "evaluated", test_set.label,
                 metrics[test_set.prefix + "accuracy"], init_metrics[test_set.prefix + "accuracy"])

    record = {f"test/{k}": v for k, v in metrics.items()}
    record |= {f"init/test/{k}": v for k, v in init_metrics.items()}
    record |= {f"factor/{f}": choice for f, choice in factor_choices(cfg).items()}
    record |= {f"version/{k}": v for k, v in package_versions().items()}
    record |= {f"data/skipped/{key}": n for key, n in sorted(skipped.items())}
    record |= {"seed": cfg.seed, "checkpoint": checkpoint, "train/steps": steps, "train/examples": steps * per_step,
               "train/resumed_from_step": checkpoint_step(resume_from) if resume_from else 0,
               "train/processes": state.num_processes, "train/questions_per_step": per_step,
               "train/gradient_accumulation_steps": cfg.method.gradient_accumulation_steps if training else 0,
               "init/cached": init_cached, "config_fingerprint": fingerprint, "wall_time_s": time.time() - started}
    record |= objective  # GRPO: the loss, ratio clip and level, beta as the trainer resolved them
    record |= provenance
    # The evaluation's decoder, as stated by our config (no checkpoint's generation_config applies).
    record |= {f"eval/generation/{key}": value for key, value in cfg.eval.generation.items()}
    record["eval/max_new_tokens"] = cfg.eval.max_new_tokens
    record |= sampled_record(cfg)  # eval/samples and the sampled evaluation's own decoder (eval/sampling/<key>)
    record["eval/backend"] = cfg.eval.backend  # which engine generated the evaluation's completions
    record["train/rollout_engine"] = rollout_engine(cfg)
    if judge is not None:
        record["eval/judge"] = evaluation_judge_name(cfg)
    if training and any(hasattr(reward, "judge") for reward in rewards):  # this attempt's steps (history: per step)
        record["train/judge/requests"], record["train/judge/failures"] = judged_in_training
    write_predictions(run_dir, test_sets, predictions, "predictions.jsonl")
    write_jsonl(run_dir, history, "history.jsonl")  # every logged step, resumed ones included
    write_resolved_config(run_dir, cfg)
    write_metrics(run_dir, record)  # last: it marks the run finished (bookkeeping.run_record.finished_record)
    if not cfg.keep_checkpoints:
        remove_checkpoints(run_dir)
    if wandb_run is not None:  # after the record: a W&B failure here is a warning, the run stays finished
        finish_safely(wandb_run, record, lambda: predictions_table(predictions[None], test_records, rewards,
                                                                   cfg.wandb.table_rows), outcomes=predictions)
    return record


def vllm_evaluator(cfg: DictConfig, checkpoint: str, revision: str | None = None) -> VLLMEvaluator | None:
    """eval.backend=vllm: a (lazily started) vLLM engine on `checkpoint`, loaded as model_init says; else None."""
    if cfg.eval.backend != "vllm":
        return None
    load = cfg.model_init
    return VLLMEvaluator(checkpoint, dtype=load.dtype, gpu_memory_utilization=cfg.eval.vllm_gpu_memory_utilization,
                         seed=cfg.seed, min_pixels=load.min_pixels, max_pixels=load.max_pixels,
                         revision=revision, reasoning=cfg.reasoning.name)


def sampled_settings(cfg: DictConfig, test_set: TestSet | None = None) -> dict:
    """evaluate()'s sampled-evaluation arguments from eval.samples, eval.sampling and eval.pass_k (off: samples None;
    off on a circular set, whose rotations already ask each question several times)."""
    samples = cfg.eval.get("samples")
    if not samples or (test_set is not None and circular(test_set)):
        return {"samples": None}
    pass_k = cfg.eval.get("pass_k")
    return {"samples": samples, "sampling": dict(cfg.eval.sampling), "pass_k": list(pass_k) if pass_k else None}


def sampled_record(cfg: DictConfig) -> dict:
    """eval/samples (0: off) and, when on, eval/sampling/<key> for the record (the decoder the samples came from)."""
    samples = cfg.eval.get("samples") or 0
    return {"eval/samples": samples} | ({f"eval/sampling/{k}": v for k, v in cfg.eval.sampling.items()} if samples else {})


def rollout_engine(cfg: DictConfig) -> str:
    """What generated the training completions: 'vllm-<mode>' (GRPO's rollouts through TRL's vLLM mode), 'hf'
    (GRPO through transformers' generate), or 'none' (SFT / DPO generate nothing)."""
    if cfg.method.trainer != "grpo":
        return "none"
    return f"vllm-{cfg.method.vllm_mode}" if cfg.method.use_vllm else "hf"


def judge_counts(rewards: list) -> tuple[int, int]:
    """(requests, failures) so far of the semantic reward's judge; (0, 0) without one."""
    judge = next((reward.judge for reward in rewards if hasattr(reward, "judge")), None)
    return (judge.requests, judge.failures) if judge is not None else (0, 0)


def judge_applies(judge, test_set: TestSet) -> bool:
    """Whether the evaluation's judge can score this set: the rule judge needs the synthetic images' ground-truth
    findings, so on a real extra test set (a synthetic run's) the set has no judge score."""
    if circular(test_set):  # rotations of one question: judged once would need a fold of its own; not judged
        return False
    return judge is not None and not (getattr(judge, "backend", None) == "rule" and not is_synthetic(test_set.config))


def circular(test_set: TestSet) -> bool:
    """Whether a test set is a circular variant (medvqa_rl/data/protocol_variants.py)."""
    return test_set.config.get("variant") == "circular"


def prefixed(test_set: TestSet, metrics: dict) -> dict:
    """A set's metrics under its keys' prefix: the in-domain as they are, an extra set's as <name>/<metric>."""
    return {test_set.prefix + key: value for key, value in metrics.items()}


def write_predictions(run_dir: Path, test_sets: list[TestSet], predictions: dict, name: str) -> None:
    """Each set's prediction rows as `name` (predictions.jsonl, init_predictions.jsonl) in its folder (the run
    dir; test_sets/<set>/ for an extra set)."""
    for test_set in test_sets:
        folder = test_set.folder(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        write_jsonl(folder, predictions[test_set.name], name)


def init_evaluation(cfg: DictConfig, run_dir: Path, provenance: dict, resume_from, test_sets: list[TestSet],
                    compute) -> tuple[dict | None, dict | None, bool]:
    """(init metrics of every test set, their predictions by set name, reused?): this run's own record when it
    resumes (no predictions: they are on disk), else per set the init-evaluation cache, else compute(test_set)
    (every process evaluates its share), recorded in both. Metrics and predictions on the main process; None on
    the others. Every process reads the same files before any is written, so all take one branch per set."""
    state = process_state()
    own_key = reuse_key(provenance)
    own = read_init_record(run_dir, own_key) if resume_from else None
    keys = [init_eval_key(cfg, provenance, s.records, s.config) for s in test_sets]
    cached = [None] * len(test_sets) if own is not None else [read_cached_init_eval(cfg.cache_dir, k) for k in keys]
    state.wait_for_everyone()
    if own is not None:
        return own, None, True
    metrics, predictions = {}, {}
    for test_set, key, hit in zip(test_sets, keys, cached, strict=True):
        set_metrics, set_predictions = hit if hit is not None else compute(test_set)
        if state.is_main_process:
            if hit is None:
                write_cached_init_eval(cfg.cache_dir, key, set_metrics, set_predictions)
            metrics |= prefixed(test_set, set_metrics)
            predictions[test_set.name] = set_predictions
    if not state.is_main_process:
        return None, None, False
    write_predictions(run_dir, test_sets[1:], predictions, "init_predictions.jsonl")
    write_init_record(run_dir, own_key, metrics, predictions[None])  # the in-domain's init_predictions.jsonl too
    return metrics, predictions, all(hit is not None for hit in cached)
