"""Resolves model_init to a checkpoint and loads it through the one from_pretrained path."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import AutoModelForImageTextToText, AutoProcessor

from medvqa_rl.distributed import process_state
from medvqa_rl.models.tiny_inits import tiny_checkpoint


ADAPTER_CONFIG = "adapter_config.json"  # peft's: a folder of LoRA adapters (a finished LoRA run's model/)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ATTENTION = ("sdpa", "eager", "flash_attention_2")


def adapter_base(checkpoint: str | None, override: str | None = None) -> str | None:
    """The checkpoint the LoRA adapters in the local folder `checkpoint` apply to: `override` (model_init.adapter_base),
    else the base_model_name_or_path of its adapter_config.json ("" when it names none); None when `checkpoint` is
    not a local folder of adapters."""
    config = Path(checkpoint).expanduser() / ADAPTER_CONFIG if checkpoint else None
    if config is None or not config.is_file():
        return None
    return override or json.loads(config.read_text()).get("base_model_name_or_path") or ""


def load_model_and_processor(checkpoint: str, dtype: torch.dtype = torch.float32, attn_implementation: str = "sdpa",
                             min_pixels: int | None = None, max_pixels: int | None = None, revision: str | None = None,
                             base: str | None = None):
    """The model class comes from the checkpoint's config (Qwen2-VL, Qwen2.5-VL, ...); the processor keeps the
    checkpoint's image resolution bounds unless min_pixels / max_pixels are given. revision: a hub id's.

    A folder of LoRA adapters (adapter_config.json) loads its base (`base`, else the one the adapters name; at
    `revision`) with the adapters on top, unmerged, as the run that trained them evaluated them; the processor
    comes from the folder when it holds one (a run's model/ does), else from the base."""
    base = adapter_base(checkpoint, base)
    weights = base or checkpoint
    bounds = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
    if revision is not None:
        bounds["revision"] = revision
    adapters_processor = base and any((Path(checkpoint).expanduser() / name).is_file()
                                      for name in ("processor_config.json", "preprocessor_config.json"))
    processor = (AutoProcessor.from_pretrained(checkpoint, **{k: v for k, v in bounds.items() if k != "revision"})
                 if adapters_processor else AutoProcessor.from_pretrained(weights, **bounds))
    # TRL left-pads prompt ids but re-runs the processor with its default side for the multimodal
    # fields; both must agree or Qwen's mm_token_type_ids shift against the image tokens.
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(weights, dtype=dtype, attn_implementation=attn_implementation,
                                                        **({"revision": revision} if revision is not None else {}))
    if base:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, checkpoint)
    return model, processor


def init_checkpoint(cfg: DictConfig) -> str:
    """The run's init checkpoint: model_init.path (hub id or local dir) if given, else the embedded tiny
    model of that stage, built from family.build (config checks reject a null path on a real family)."""
    if cfg.model_init.path is not None:
        return str(cfg.model_init.path)
    return str(tiny_checkpoint(cfg.model_init.name, OmegaConf.to_container(cfg.family.build, resolve=True),
                               cfg.cache_dir))


def load_init(cfg: DictConfig):
    """The run's init, loaded as model_init says and moved to this process's device (before the init
    evaluation, which would otherwise run on the CPU): (model, processor, checkpoint)."""
    checkpoint = init_checkpoint(cfg)
    load = cfg.model_init
    model, processor = load_model_and_processor(checkpoint, DTYPES[load.dtype], load.attn_implementation,
                                                load.min_pixels, load.max_pixels, load.get("revision"),
                                                load.get("adapter_base"))
    return model.to(process_state().device), processor, checkpoint
