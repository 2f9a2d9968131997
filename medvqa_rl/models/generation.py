"""Batched generation with left padding, through the same message preparation as TRL, with the decoding our
config states and nothing from the checkpoint's generation_config (medvqa_rl/decoding.py)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from medvqa_rl.decoding import decoding_with, own_generation_config
from medvqa_rl.prompts import assistant_turn, prompt_conversation
from medvqa_rl.reasoning_formats import DEFAULT

# The evaluation's decoder when no eval.generation is given (conf/config.yaml states the same): greedy, no
# penalty. Every knob not named takes transformers' global default, never the checkpoint's.
GREEDY = {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0}


def generate_greedy(model, processor, records: list[dict], batch_size: int, max_new_tokens: int,
                    progress: bool = False, generation: dict | None = None,
                    reasoning: str = DEFAULT) -> list[tuple[str, int]]:
    """Completions for ``records`` decoded with ``generation`` (eval.generation: GenerationConfig fields;
    default GREEDY), batch by batch with left padding, prompted for the reasoning format: [(text, n_tokens)]."""
    decoding = dict(GREEDY if generation is None else generation)
    return generate_completions(model, processor, records, batch_size, max_new_tokens, progress, reasoning=reasoning,
                                **decoding)


def generate_sampled(model, processor, records: list[dict], batch_size: int, max_new_tokens: int, samples: int,
                     temperature: float) -> list[tuple[str, int]]:
    """``samples`` completions per record drawn at ``temperature`` from the full distribution (as GRPO's
    rollouts are), record by record: [(text, n_tokens)] of length len(records) * samples."""
    return generate_completions(model, processor, records, batch_size, max_new_tokens, do_sample=True,
                                temperature=temperature, top_k=0, top_p=1.0, num_return_sequences=samples)


def generate_completions(model, processor, records: list[dict], batch_size: int, max_new_tokens: int,
                         progress: bool = False, reasoning: str = DEFAULT, **decoding) -> list[tuple[str, int]]:
    """Completions for ``records`` decoded with ``decoding`` (GenerationConfig fields) and nothing else from the
    checkpoint but its token ids, batch by batch with left padding: [(text, n_tokens)]."""
    tokenizer = processor.tokenizer
    stop_ids = stop_token_ids(model, processor)
    config = own_generation_config(model, **decoding, max_new_tokens=max_new_tokens, eos_token_id=stop_ids,
                                   pad_token_id=tokenizer.pad_token_id)
    outputs = []
    model.eval()
    for start in tqdm(range(0, len(records), batch_size), desc="generate", unit="batch", disable=not progress):
        batch = records[start : start + batch_size]
        conversations = [prompt_conversation(r["question"], r["options"], r["image"], reasoning) for r in batch]
        inputs = processor.apply_chat_template(
            conversations,
            tokenize=True,
            add_generation_prompt=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True, "padding_side": "left"},  # the processor's own, not the template's
        ).to(model.device)
        with torch.no_grad(), decoding_with(model, config):
            generated = model.generate(**inputs, generation_config=config)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        for row in new_tokens.tolist():
            kept = _until_stop(row, {*stop_ids, tokenizer.pad_token_id})
            outputs.append((tokenizer.decode(kept, skip_special_tokens=True), len(kept)))
    return outputs


def stop_token_ids(model, processor) -> list[int]:
    """The tokens that end a completion: the checkpoint's eos ids and the chat's end of turn (a base checkpoint's
    generation config may stop at <|endoftext|> only; the end of turn ends an answer too)."""
    return sorted(set(_as_list(model.generation_config.eos_token_id)) | set(end_of_turn_ids(processor)))


def end_of_turn_ids(processor) -> list[int]:
    """The token that closes an assistant turn in the chat template (e.g. <|im_end|>), if it is one token."""
    marker = "\x00"
    turn = assistant_turn(processor, marker)
    closing = turn[turn.index(marker) + 1 :].strip()
    ids = processor.tokenizer(closing, add_special_tokens=False)["input_ids"] if closing else []
    return ids if len(ids) == 1 else []


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _until_stop(token_ids: list[int], stop_ids: set[int]) -> list[int]:
    for i, token in enumerate(token_ids):
        if token in stop_ids:
            return token_ids[:i]
    return token_ids
