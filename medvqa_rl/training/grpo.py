"""GRPO with TRL's GRPOTrainer: our config mapped onto GRPOConfig, reward callables passed in."""

from __future__ import annotations

import functools

from hydra.utils import instantiate
from omegaconf import DictConfig
from trl import GRPOConfig, GRPOTrainer

from medvqa_rl.data.splits import to_trl_dataset
from medvqa_rl.decoding import OwnDecodingCallback
from medvqa_rl.training.common import common_args, lora_config
from medvqa_rl.training.objectives import objective_arguments


def _reward_specs(cfg: DictConfig) -> list[tuple[DictConfig, float]]:
    """(callable spec, weight) pairs: the reward group's, then the length reward's, in one order."""
    return [
        (spec, float(group.weights[name]))
        for group in (cfg.reward, cfg.length_reward)
        for name, spec in group.functions.items()
    ]


def reward_functions(cfg: DictConfig, tokenizer) -> list:
    """The reward callables, instantiated from config (a judge is built here, once per run).

    Specs marked `_partial_: true` (the length rewards) are completed with the policy's tokenizer and the
    completion budget (their target length is a fraction of it).
    """
    built = [instantiate(spec) for spec, _ in _reward_specs(cfg)]
    budget = cfg.method.max_completion_length
    return [fn(tokenizer=tokenizer, completion_budget=budget) if isinstance(fn, functools.partial) else fn
            for fn in built]


def reward_weights(cfg: DictConfig) -> list[float]:
    """Their weights, read from config without building the callables (a judge may be costly)."""
    return [weight for _, weight in _reward_specs(cfg)]


def grpo_config(cfg: DictConfig, output_dir: str, report_to: str) -> GRPOConfig:
    """Every GRPO arm sets loss_type, scale_rewards, beta and method.objective explicitly: TRL's defaults moved
    across releases."""
    method = cfg.method
    return GRPOConfig(
        **common_args(cfg, output_dir, report_to),
        num_generations=method.num_generations,
        num_iterations=method.num_iterations,
        max_completion_length=method.max_completion_length,
        cache_implementation=method.cache_implementation,
        temperature=method.temperature,
        mask_truncated_completions=method.mask_truncated_completions,
        use_vllm=method.use_vllm,  # rollouts through vLLM (checked installed in config_checks)
        vllm_mode=method.vllm_mode,
        vllm_gpu_memory_utilization=method.vllm_gpu_memory_utilization,
        reward_weights=reward_weights(cfg),
        **objective_arguments(cfg),  # beta, loss_type, scale_rewards and the loss's own knobs (training/objectives.py)
        **method.objective,
    )


def build_grpo_trainer(cfg: DictConfig, model, processor, rewards: list, train_records: list[dict], output_dir: str,
                       report_to: str) -> GRPOTrainer:
    """TRL's GRPOTrainer. Its rollouts decode with a GenerationConfig of method.temperature, top_p, top_k,
    repetition_penalty (and min_p, TRL's default None); transformers would fill every other knob (and min_p) from
    the checkpoint's generation_config, so OwnDecodingCallback leaves the policy only its token ids while it
    trains (medvqa_rl/decoding.py). vLLM rollouts get TRL's SamplingParams, which name every knob they use."""
    return GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=grpo_config(cfg, output_dir, report_to),
        train_dataset=to_trl_dataset(train_records, cfg.reasoning.name),
        processing_class=processor,
        peft_config=lora_config(cfg.method),
        callbacks=[OwnDecodingCallback()],
    )
