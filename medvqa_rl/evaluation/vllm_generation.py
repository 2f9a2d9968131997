"""The evaluation's completions from vLLM's offline engine (eval.backend=vllm) instead of transformers' generate:
the same prompt text (TRL's chat rendering, image block first), the same stop tokens, the decoder of
eval.generation mapped onto vLLM's SamplingParams, and the same (text, n_tokens) pairs, so scoring is unchanged.

vLLM is imported only when an engine starts: config checks and the transformers path run without it.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping

from medvqa_rl.distributed import process_state
from medvqa_rl.models.generation import GREEDY, _until_stop
from medvqa_rl.prompts import chat_prompt
from medvqa_rl.reasoning_formats import DEFAULT

# transformers' global GenerationConfig defaults for the knobs vLLM has too: a knob eval.generation leaves out takes
# these on the generate path (never the checkpoint's), so vLLM is given the same.
HF_DEFAULTS = {"do_sample": False, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None,
               "repetition_penalty": 1.0, "num_beams": 1, "no_repeat_ngram_size": 0}
# Knobs that vLLM's SamplingParams cannot express: only their neutral value is accepted.
NEUTRAL_ONLY = {"num_beams": 1, "no_repeat_ngram_size": 0}


def unsupported_decoding(generation: Mapping | None) -> str | None:
    """Why eval.generation cannot be reproduced by vLLM (names the key), or None when it can."""
    for key, value in (GREEDY if generation is None else generation).items():
        if key not in HF_DEFAULTS:
            return f"eval.generation.{key} has no vLLM counterpart (vLLM takes {sorted(HF_DEFAULTS)})"
        if key in NEUTRAL_ONLY and value != NEUTRAL_ONLY[key]:
            return f"eval.generation.{key}={value} has no vLLM counterpart (only {NEUTRAL_ONLY[key]})"
    return None


def sampling_settings(generation: Mapping | None) -> dict:
    """SamplingParams keywords (besides max_tokens and stop tokens) for eval.generation (GenerationConfig fields):
    greedy is temperature 0; sampling keeps transformers' defaults for every knob left out (top_k 50)."""
    problem = unsupported_decoding(generation)
    if problem is not None:
        raise ValueError(problem)
    knobs = HF_DEFAULTS | dict(GREEDY if generation is None else generation)
    settings = {"repetition_penalty": float(knobs["repetition_penalty"])}
    if not knobs["do_sample"]:
        return settings | {"temperature": 0.0}
    return settings | {"temperature": float(knobs["temperature"]), "top_p": float(knobs["top_p"]),
                       "top_k": int(knobs["top_k"]) if knobs["top_k"] else -1,  # vLLM: -1 (or 0) is no top-k
                       "min_p": float(knobs["min_p"] or 0.0)}


class VLLMEvaluator:
    """A vLLM engine on `checkpoint` (a local folder or a hub id), started on first use and kept for every test set
    evaluated on that checkpoint; close() frees it.

    dtype: "float32" | "bfloat16" | "float16" (model_init.dtype). gpu_memory_utilization: the fraction of this
    process's GPU the engine takes (eval.vllm_gpu_memory_utilization; vLLM's CPU build sizes its KV cache from
    VLLM_CPU_KVCACHE_SPACE instead). min_pixels / max_pixels: the processor's image bounds (model_init), so vLLM's
    processor cuts images into the same patches as ours. Under several processes each runs its own engine on its
    own device (vLLM's external_launcher, as TRL's colocate mode starts it) and generates its own share.
    engine: further keywords of vllm.LLM (e.g. enforce_eager=True, as the CPU benchmarks start it).
    """

    def __init__(self, checkpoint: str, *, dtype: str = "float32", gpu_memory_utilization: float = 0.3,
                 seed: int = 0, min_pixels: int | None = None, max_pixels: int | None = None,
                 revision: str | None = None, max_model_len: int | None = None, reasoning: str = DEFAULT,
                 **engine: object):
        self.checkpoint = checkpoint
        self.reasoning = reasoning  # the prompts ask for this reasoning format, as the generate path's do
        self._settings = dict(dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, seed=seed,
                              revision=revision, max_model_len=max_model_len, engine=engine)
        self._image_bounds = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels))
                              if v is not None}
        self._llm = None

    @property
    def llm(self):
        if self._llm is None:
            self._llm = start_engine(self.checkpoint, self._image_bounds, **self._settings)
        return self._llm

    def generate(self, processor, records: list[dict], max_new_tokens: int, stop_ids: list[int],
                 generation: Mapping | None = None, progress: bool = False) -> list[tuple[str, int]]:
        """[(text, n_tokens)] per record, as generation.generate_completions returns them (completions_from)."""
        return vllm_completions(self.llm, processor, records, max_new_tokens, stop_ids, generation, progress,
                                self.reasoning)

    def close(self) -> None:
        """Frees the engine (and its GPU memory); a later generate() starts it again."""
        if self._llm is None:
            return
        self._llm = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass


def start_engine(checkpoint: str, image_bounds: dict, *, dtype: str, gpu_memory_utilization: float, seed: int,
                 revision: str | None, max_model_len: int | None, engine: dict | None = None):
    """vLLM's offline engine on `checkpoint`. generation_config="vllm": vLLM's defaults, never the checkpoint's
    generation_config.json (the evaluation decides its own decoding; medvqa_rl/decoding.py)."""
    from vllm import LLM  # heavy and optional: only when an engine starts

    kwargs = dict(model=checkpoint, dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                  generation_config="vllm", limit_mm_per_prompt={"image": 1, "video": 0})
    if revision is not None:
        kwargs["revision"] = revision
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    if image_bounds:
        kwargs["mm_processor_kwargs"] = dict(image_bounds)
    if process_state().num_processes > 1:
        # one engine per training process, on that process's device (TRL's colocate mode starts its engine so)
        kwargs["distributed_executor_backend"] = "external_launcher"
    return LLM(**kwargs | (engine or {}))


def vllm_prompts(processor, records: list[dict], reasoning: str = DEFAULT) -> list[dict]:
    """vLLM's inputs: the prompt text exactly as the generate path renders it (prompts.chat_prompt) with the
    record's image; vLLM's processor expands the image placeholder as ours does."""
    return [{"prompt": chat_prompt(processor, r["question"], r["options"], r["image"], reasoning),
             "multi_modal_data": {"image": r["image"]}} for r in records]


def vllm_completions(llm, processor, records: list[dict], max_new_tokens: int, stop_ids: list[int],
                     generation: Mapping | None = None, progress: bool = False,
                     reasoning: str = DEFAULT) -> list[tuple[str, int]]:
    """Completions of `records` from the engine `llm` (one request per record; vLLM batches them itself)."""
    outputs = vllm_outputs(llm, processor, records, max_new_tokens, stop_ids, generation, progress, reasoning)
    return completions_from(outputs, processor.tokenizer, stop_ids)


def vllm_outputs(llm, processor, records: list[dict], max_new_tokens: int, stop_ids: list[int],
                 generation: Mapping | None = None, progress: bool = False, reasoning: str = DEFAULT) -> list:
    """vLLM's RequestOutputs for `records`, in their order (prompt_token_ids, outputs[0].token_ids, ...)."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_new_tokens, stop_token_ids=list(stop_ids), skip_special_tokens=True,
                            **sampling_settings(generation))
    return llm.generate(vllm_prompts(processor, records, reasoning), params, use_tqdm=progress)


def completions_from(outputs, tokenizer, stop_ids: list[int]) -> list[tuple[str, int]]:
    """[(text, n_tokens)] as the generate path makes them: the tokens up to (not including) the first stop or pad
    token (vLLM keeps the stop token in token_ids), decoded with our tokenizer, skipping special tokens."""
    completions = []
    for output in outputs:
        kept = _until_stop(list(output.outputs[0].token_ids), {*stop_ids, tokenizer.pad_token_id})
        completions.append((tokenizer.decode(kept, skip_special_tokens=True), len(kept)))
    return completions
