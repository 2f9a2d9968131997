"""The embedded tiny base and tiny instruct checkpoints, built once per config and cached on disk.

tiny base     = a tiny VLM pretrained on image -> report text only (no chat, no question format).
tiny instruct = tiny base + a short instruction tuning on a separate question split (its own images)
                whose options are shuffled for a fraction of the questions: a distribution unlike the
                test set's fixed per-type order. It answers in format and its reasoning usually names
                the right finding, while its final letter follows that reasoning only part of the time
                and with little confidence - the room GRPO works in. A fraction of its rationales open
                with a neutral phrase, so like a real instruct model it reasons at more than one length
                and a length reward has within-group differences to act on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from pathlib import Path

from filelock import FileLock

from medvqa_rl.data.synthetic import make_split, report_text
from medvqa_rl.models.supervised_stage import SupervisedExample, train_supervised
from medvqa_rl.models.tiny_vlm import build_model, build_processor, train_tokenizer
from medvqa_rl.prompts import assistant_turn, chat_prompt, question_text, reference_response

log = logging.getLogger(__name__)

STAGES = ("base", "instruct")
# Bump when the generator or the build recipe changes, so stale caches are not reused.
RECIPE_VERSION = 1
CAPTION_PROMPT = "<|vision_start|><|image_pad|><|vision_end|>"
VERBOSE_OPENING = "in the image, "


def tiny_checkpoint(stage: str, spec: dict, cache_dir: str | Path) -> Path:
    """Path of the tiny ``stage`` checkpoint for ``spec`` (the config's tiny_model), building it if missing."""
    if stage not in STAGES:
        raise ValueError(f"model_init.name must be one of {STAGES} for the embedded tiny model, got {stage!r}")
    root = Path(cache_dir).expanduser() / f"tiny-{cache_key(spec)}"
    root.mkdir(parents=True, exist_ok=True)
    # One builder at a time: parallel sweep jobs wait for the first to finish, then reuse its result.
    with FileLock(str(root / ".lock")):
        if not (root / "instruct" / "config.json").exists():
            _build(spec, root)
    return root / stage


def cache_key(spec: dict) -> str:
    """Stable digest of the tiny-model config and the build recipe."""
    return hashlib.sha256(json.dumps([RECIPE_VERSION, spec], sort_keys=True).encode()).hexdigest()[:16]


def _build(spec: dict, root: Path) -> None:
    seed, image_size, arch = spec["seed"], spec["image_size"], spec["arch"]
    pre, ins = spec["pretrain"], spec["instruct"]
    captions = make_split("pretrain", pre["examples"], seed, image_size)
    instruct = _vary_rationale_length(_instruct_records(ins["examples"], ins["shuffled_fraction"], seed, image_size),
                                      ins["verbose_fraction"], seed)

    corpus = [report_text(r["findings"]) for r in captions]
    corpus += [question_text(r["question"], r["options"]) for r in instruct]
    corpus += [reference_response(r) for r in instruct]
    corpus += ["user\n", "assistant\n"] * len(instruct)  # the chat roles, as often as a prompt
    tokenizer = train_tokenizer(corpus, spec["vocab_size"])
    processor = build_processor(tokenizer, image_size, arch["patch_size"], arch["merge_size"])
    model = build_model(tokenizer, arch, seed)

    caption_examples = [
        SupervisedExample(r["image"], CAPTION_PROMPT, report_text(r["findings"]) + "<|endoftext|>") for r in captions
    ]
    losses = train_supervised(model, processor, caption_examples, steps=pre["steps"], batch_size=pre["batch_size"],
                              learning_rate=pre["learning_rate"], seed=seed)
    log.info("tiny base: caption loss %.3f -> %.3f", losses[0], losses[-1])
    _save(model, processor, root / "base")

    instruct_examples = [
        SupervisedExample(r["image"], chat_prompt(processor, r["question"], r["options"], r["image"]),
                          assistant_turn(processor, reference_response(r)))
        for r in instruct
    ]
    losses = train_supervised(model, processor, instruct_examples, steps=ins["steps"], batch_size=ins["batch_size"],
                              learning_rate=ins["learning_rate"], seed=seed)
    log.info("tiny instruct: instruction loss %.3f -> %.3f", losses[0], losses[-1])
    _save(model, processor, root / "instruct")


def _instruct_records(n: int, shuffled_fraction: float, seed: int, image_size: int) -> list[dict]:
    """n instruction records, the first round(n * shuffled_fraction) with shuffled options.

    Records are drawn independently per index (a shorter split is the start of a longer one), so
    splitting by index mixes the two orders without bias and renders each shuffled image once.
    """
    m = round(n * shuffled_fraction)
    shuffled = make_split("instruct", m, seed, image_size, option_order="shuffled") if m else []
    return shuffled + make_split("instruct", n, seed, image_size, option_order="fixed", first=m)


def _vary_rationale_length(records: list[dict], verbose_fraction: float, seed: int) -> list[dict]:
    """Opens a seeded verbose_fraction of the rationales with VERBOSE_OPENING (it states no finding)."""
    rng = random.Random(f"verbose:{seed}")
    return [{**r, "rationale": VERBOSE_OPENING + r["rationale"]} if rng.random() < verbose_fraction else r
            for r in records]


def _save(model, processor, target: Path) -> None:
    """Writes to a scratch folder first so a killed build never leaves a half checkpoint behind."""
    scratch = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    model.save_pretrained(scratch)
    processor.save_pretrained(scratch)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(scratch, target)
