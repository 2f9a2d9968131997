"""GRPO with TRL's GRPOTrainer: our config mapped onto GRPOConfig, reward callables passed in."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig
from peft import LoraConfig
from trl import GRPOConfig, GRPOTrainer


def reward_functions(cfg: DictConfig) -> tuple[list, list[float]]:
    """The reward callables and their weights: the reward group's, then the length reward's."""
    functions, weights = [], []
    for group in (cfg.reward, cfg.length_reward):
        for name, spec in group.functions.items():
            functions.append(instantiate(spec))
            weights.append(float(group.weights[name]))
    return functions, weights


def grpo_config(cfg: DictConfig, output_dir: str, report_to: str) -> GRPOConfig:
    """Every GRPO arm sets loss_type, scale_rewards and beta explicitly: TRL's defaults moved across releases."""
    method, bias = cfg.method, cfg.bias
    _, weights = reward_functions(cfg)
    return GRPOConfig(
        output_dir=output_dir,
        seed=cfg.seed,
        max_steps=method.max_steps,
        learning_rate=method.learning_rate,
        warmup_steps=method.warmup_steps,
        per_device_train_batch_size=method.per_device_train_batch_size,
        gradient_accumulation_steps=method.gradient_accumulation_steps,
        num_generations=method.num_generations,
        num_iterations=method.num_iterations,
        max_completion_length=method.max_completion_length,
        temperature=method.temperature,
        mask_truncated_completions=method.mask_truncated_completions,
        beta=method.beta,
        loss_type=bias.loss_type,
        scale_rewards=bias.scale_rewards,
        reward_weights=weights,
        bf16=method.bf16,
        gradient_checkpointing=method.gradient_checkpointing,
        logging_steps=method.logging_steps,
        save_strategy="no",
        report_to=report_to,
        disable_tqdm=True,
    )


def build_grpo_trainer(cfg: DictConfig, model, processor, train_dataset, output_dir: str, report_to: str) -> GRPOTrainer:
    functions, _ = reward_functions(cfg)
    lora = cfg.method.lora
    peft_config = (
        LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules)
        if lora.enabled
        else None
    )
    return GRPOTrainer(
        model=model,
        reward_funcs=functions,
        args=grpo_config(cfg, output_dir, report_to),
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=peft_config,
    )
