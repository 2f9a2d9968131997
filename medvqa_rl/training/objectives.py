"""The policy objective of a GRPO run: TRL 1.16's loss_type with its ratio clip and level (the `bias` group, one
paper's recipe per option) and the KL weight (method.beta); what must hold before anything loads; what the trainer
resolved, for the run record.

At num_iterations 1 with one generation per optimiser step (the defaults) every rollout is on-policy: the importance
ratio is exactly 1, so no clip acts and grpo, sapo and gspo give the same per-token gradient (as do dapo and cispo);
the objectives then differ only in how token losses are averaged (per sequence, per local batch's tokens, per
accumulated batch's tokens, by a constant). The clips and gates act on later passes over a batch (num_iterations > 1).
"""

from __future__ import annotations

from omegaconf import DictConfig

# GRPOConfig.loss_type's values in TRL 1.16 (its help text; TRL raises only at the first training step otherwise).
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
# Losses that clip the ratio to [1 - epsilon, 1 + epsilon_high] (and by delta when set).
CLIPPED = ("grpo", "dr_grpo", "dapo", "bnpo", "luspo")
# Losses with a soft gate or weight instead of a clip: epsilon_high and delta would be ignored.
UNCLIPPED = ("sapo", "vespo")
# Token-sum losses: at importance_sampling_level=sequence they weight each sequence by its length instead of
# optimising the per-sequence objective (TRL 1.16 warns; GSPO's recipe is loss_type=grpo).
TOKEN_SUMS = ("bnpo", "dr_grpo", "dapo", "cispo")
# The importance-sampling level an objective needs, by bias option or loss type.
REQUIRED_LEVEL = {
    "gspo": ("sequence", "GSPO's objective is the sequence-level ratio"),
    "luspo": ("sequence", "LUSPO is a sequence-level loss"),
    "vespo": ("token", "VESPO forms its sequence weights from the token ratios itself"),
}
LEVELS = ("token", "sequence")


def objective_problem(cfg: DictConfig) -> str | None:
    """Why the GRPO objective (bias group, method.beta, method.objective) cannot run as meant, naming the key; or
    None. The ratio's knobs are checked as TRL gets them (method.objective, interpolated from the bias group)."""
    bias, method = cfg.bias, cfg.method
    if bias.loss_type not in LOSS_TYPES:
        return f"bias.loss_type must be one of TRL 1.16's {LOSS_TYPES}, got {bias.loss_type!r}"
    if method.beta is None or method.beta < 0:
        return f"method.beta (the KL coefficient) must be 0 or positive, got {method.beta}"
    objective = method.objective
    level = objective.importance_sampling_level
    level_key = _key(cfg, "importance_sampling_level")
    if level not in LEVELS:
        return f"{level_key} must be one of {LEVELS}, got {level!r}"
    for owner in (bias.name, bias.loss_type):
        if owner in REQUIRED_LEVEL and level != REQUIRED_LEVEL[owner][0]:
            needed, why = REQUIRED_LEVEL[owner]
            return f"{level_key}={level}: bias={bias.name} needs {needed!r} ({why})"
    if level == "sequence" and bias.loss_type in TOKEN_SUMS:
        return (f"{level_key}=sequence with bias.loss_type={bias.loss_type}: a token-sum loss would weight each "
                "sequence by its length (GSPO's recipe is loss_type=grpo: bias=gspo)")
    epsilon, high, delta = objective.epsilon, objective.epsilon_high, objective.delta
    if bias.loss_type in CLIPPED:
        if not 0 < epsilon < 1:
            return f"{_key(cfg, 'epsilon')} must be in (0, 1) (the ratio's lower clip is 1 - epsilon), got {epsilon}"
        if high is not None and high <= 0:
            return f"{_key(cfg, 'epsilon_high')} must be positive or null, got {high}"
        upper = 1 + (epsilon if high is None else high)
        if delta is not None and delta <= upper:
            return f"{_key(cfg, 'delta')} must exceed 1 + epsilon_high = {upper:g} (or be null), got {delta}"
    elif bias.loss_type == "cispo":
        if high is None or high <= 1:
            return (f"{_key(cfg, 'epsilon_high')}={high}: cispo caps the importance weight itself at epsilon_high, so it "
                    "must exceed 1 (ScaleRL's 5.0), or every token's gradient is cut")
        if delta is not None:
            return f"{_key(cfg, 'delta')}={delta}: cispo has no two-sided clip (set null)"
    elif bias.loss_type in UNCLIPPED:
        for name, value in (("epsilon_high", high), ("delta", delta)):
            if value is not None:
                return f"{_key(cfg, name)}={value}: {bias.loss_type} has no clip, the value would be ignored (set null)"
    for name, value in bias.get("loss_knobs", {}).items():
        if not name.startswith(bias.loss_type + "_"):
            return f"bias.loss_knobs.{name}: not a knob of loss_type {bias.loss_type}"
        if value is None or value <= 0:
            return f"bias.loss_knobs.{name} must be positive, got {value}"
    if bias.loss_type == "vespo" and method.use_vllm and method.objective.vllm_importance_sampling_correction:
        mode = method.objective.vllm_importance_sampling_mode
        if mode not in ("token_truncate", "token_mask"):
            return (f"method.objective.vllm_importance_sampling_mode={mode}: vespo with vLLM rollouts needs token_truncate "
                    "or token_mask")
    return None


def _key(cfg: DictConfig, name: str) -> str:
    """The key a user set a ratio knob at: the bias group's, unless method.objective was overridden apart from it."""
    differs = cfg.method.objective.get(name) != cfg.bias.get(name)
    return f"method.objective.{name}" if differs else f"bias.{name}"


def objective_arguments(cfg: DictConfig) -> dict:
    """GRPOConfig's objective keywords: loss_type, scale_rewards, beta, the loss's own knobs; method.objective's
    knobs are passed beside them by the caller."""
    bias = cfg.bias
    return dict(beta=cfg.method.beta, loss_type=bias.loss_type, scale_rewards=bias.scale_rewards,
                **bias.get("loss_knobs", {}))


def resolved_objective(trainer) -> dict:
    """What the trainer runs, as it resolved it (epsilon_low, and epsilon_high filled from epsilon when unset), for
    the run record: objective/<knob>."""
    args = trainer.args
    record = {"loss_type": trainer.loss_type, "scale_rewards": str(trainer.scale_rewards),
              "importance_sampling_level": trainer.importance_sampling_level, "epsilon_low": trainer.epsilon_low,
              "epsilon_high": trainer.epsilon_high, "delta": args.delta, "beta": trainer.beta,
              "num_iterations": trainer.num_iterations}
    prefix = f"{trainer.loss_type}_"
    record |= {name: getattr(args, name) for name in vars(args) if name.startswith(prefix)}
    return {f"objective/{key}": value for key, value in record.items()}
