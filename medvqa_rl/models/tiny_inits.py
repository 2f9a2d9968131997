"""The embedded tiny base and tiny instruct checkpoints: built from the recipe, cached on disk, or shipped.

caption model = a tiny VLM pretrained on image -> report text only (no chat, no question format).
tiny base     = the caption model + a short continued pretraining on documents of the kind a base model's
                corpus holds: captions, and chat exchanges where a question is answered mostly in prose, a
                fraction in <think>sentence</think><answer>finding in words</answer> tags. Like a real
                base model that has seen some tagged text, a fraction of its sampled completions to a
                question are in format (their answer in words, read as the option with that text), so GRPO
                from base has a format and an accuracy to learn. (Captions alone gave a base that never
                wrote a tag: every reward 0, nothing for GRPO to act on.)
tiny instruct = the caption model + a short instruction tuning on a separate question split (its own images).
                It branches off before the base's tagged stage, so the instruct does not depend on how much
                tagged text the base saw (and stays the checkpoint every default measurement was made on).
                Its reasoning usually names the right finding, but a little over half of its training
                answers slip to the next option's letter (a consistent off-by-one misreading of the option
                list), so its greedy letter follows its reasoning only part of the time, while the letter
                is always a function of the finding the reasoning names: the room GRPO works in, and a
                signal it can use on any machine. (Shuffled options, the earlier recipe, made that
                dependence a matter of build luck: one machine's build gained 16 points, another's none.)
                A fraction of its rationales open with a neutral phrase, so like a real instruct model it
                reasons at more than one length and a length reward has within-group differences to act on.

The checkpoints built from the default config ship with the package (medvqa_rl/models/shipped_tiny.py); any
other family.build config is built here and cached under cache_dir, keyed by the config and RECIPE_VERSION.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path

from filelock import FileLock
from safetensors import safe_open

from medvqa_rl.data.synthetic import make_split, report_text
from medvqa_rl.models.init_probe import probe_init, probe_sampled
from medvqa_rl.models.shipped_tiny import shipped_checkpoint
from medvqa_rl.models.supervised_stage import SupervisedExample, train_supervised
from medvqa_rl.models.tiny_vlm import build_model, build_processor, train_tokenizer
from medvqa_rl.prompts import (LETTERS, assistant_turn, chat_prompt, question_text, reference_completion,
                               reference_response)
from medvqa_rl.reasoning_formats import DEFAULT as DEFAULT_FORMAT, reasoning_format

log = logging.getLogger(__name__)

STAGES = ("base", "instruct")
# Bump when the generator or the build recipe changes, so stale caches are not reused.
RECIPE_VERSION = 3
CAPTION_PROMPT = "<|vision_start|><|image_pad|><|vision_end|>"
VERBOSE_OPENING = "in the image, "
BUILD_LOG = "build.json"
PROBE_QUESTIONS = 200  # held-out questions ("probe" split) the built instruct is probed on
BASE_PROBE_SAMPLES = 4  # sampled completions per probe question the built base's format rate is measured on


def tiny_checkpoint(stage: str, spec: dict, cache_dir: str | Path) -> Path:
    """Path of the tiny ``stage`` checkpoint for ``spec`` (the config's family.build): the one shipped with the
    package when ``spec`` is the config it was built from, else a build cached under ``cache_dir``."""
    if stage not in STAGES:
        raise ValueError(f"model_init.name must be one of {STAGES} for the embedded tiny model, got {stage!r}")
    shipped = shipped_checkpoint(stage, cache_key(spec))
    if shipped is not None:
        return shipped
    return built_root(spec, cache_dir) / stage


def built_root(spec: dict, cache_dir: str | Path) -> Path:
    """The cache folder holding base/ and instruct/ built from ``spec``, building them if missing."""
    root = Path(cache_dir).expanduser() / f"tiny-{cache_key(spec)}"
    root.mkdir(parents=True, exist_ok=True)
    # One builder at a time: parallel sweep jobs wait for the first to finish, then reuse its result.
    with FileLock(str(root / ".lock")):
        reason = _unreadable(root) if (root / "instruct" / "config.json").exists() else None
        if reason is not None:
            _set_aside(root, reason)
        if not (root / "instruct" / "config.json").exists():
            _build(spec, root)
    return root


def _unreadable(root: Path) -> str | None:
    """Why a built pair cannot be loaded (a file cut off or garbled), or None. Every tensor is read: the tiny
    models are a few MB."""
    for stage in STAGES:
        for path in sorted((root / stage).glob("*.safetensors")) or [root / stage / "model.safetensors"]:
            try:
                with safe_open(str(path), "pt") as weights:
                    for name in weights.keys():
                        weights.get_tensor(name)
            except Exception as error:  # noqa: BLE001 - any failure to read makes the build unusable
                return f"{path.relative_to(root)}: {type(error).__name__}: {error}"
    return None


def _set_aside(root: Path, reason: str) -> None:
    """Moves a damaged build's stages into <root>/corrupt-<time>/ (kept for inspection) so it is built again."""
    aside = root / f"corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
    log.warning("tiny model cache %s cannot be loaded (%s); set aside in %s and built again", root, reason, aside)
    aside.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        if (root / stage).exists():
            shutil.move(str(root / stage), aside / stage)


def keyed_spec(spec: dict) -> dict:
    """The tiny-model config as the cache key and the build's record see it. The instruct's reasoning formats
    at their default (the paper's alone) stay out: the key of every build made before the option existed."""
    spec = copy.deepcopy(dict(spec))
    if list(spec.get("instruct", {}).get("reasoning_formats", [DEFAULT_FORMAT])) == [DEFAULT_FORMAT]:
        spec.get("instruct", {}).pop("reasoning_formats", None)
    return spec


def cache_key(spec: dict) -> str:
    """Stable digest of the tiny-model config (keyed_spec) and the build recipe."""
    return hashlib.sha256(json.dumps([RECIPE_VERSION, keyed_spec(spec)], sort_keys=True).encode()).hexdigest()[:16]


def _build(spec: dict, root: Path) -> None:
    seed, image_size, arch = spec["seed"], spec["image_size"], spec["arch"]
    pre, ins = spec["pretrain"], spec["instruct"]
    captions = make_split("pretrain", pre["examples"], seed, image_size)
    instruct = _instruct_records(ins["examples"], ins["shuffled_fraction"], seed, image_size)
    instruct = _slip_letters(_vary_rationale_length(instruct, ins["verbose_fraction"], seed), ins["slip_fraction"], seed)
    instruct = _assign_formats(instruct, ins.get("reasoning_formats", [DEFAULT_FORMAT]), seed)

    corpus = [report_text(r["findings"]) for r in captions]
    corpus += [question_text(r["question"], r["options"], r["reasoning"]) for r in instruct]
    corpus += [reference_response(r, r["reasoning"]) for r in instruct]
    corpus += ["user\n", "assistant\n"] * len(instruct)  # the chat roles, as often as a prompt
    tokenizer = train_tokenizer(corpus, spec["vocab_size"])
    processor = build_processor(tokenizer, image_size, arch["patch_size"], arch["merge_size"])
    model = build_model(tokenizer, arch, seed)

    caption_examples = [
        SupervisedExample(r["image"], CAPTION_PROMPT, report_text(r["findings"]) + "<|endoftext|>") for r in captions
    ]
    caption_losses = train_supervised(model, processor, caption_examples, steps=pre["steps"],
                                      batch_size=pre["batch_size"], learning_rate=pre["learning_rate"], seed=seed)
    log.info("caption model: caption loss %.3f -> %.3f", caption_losses[0], caption_losses[-1])

    stage = spec["base_stage"]
    base = copy.deepcopy(model)  # the instruct is tuned from the caption model itself
    documents = _base_documents(captions, processor, stage["question_fraction"], stage["tagged_fraction"], seed)
    base_losses = train_supervised(base, processor, documents, steps=stage["steps"], batch_size=pre["batch_size"],
                                   learning_rate=stage["learning_rate"], seed=seed)
    log.info("tiny base: continued pretraining loss %.3f -> %.3f", base_losses[0], base_losses[-1])
    probe_records = make_split("probe", PROBE_QUESTIONS, seed, image_size)
    base_probe = probe_sampled(base, processor, probe_records, BASE_PROBE_SAMPLES, seed)
    log.info("tiny base probe, %d sampled completions to each of %d held-out questions: %s", BASE_PROBE_SAMPLES,
             PROBE_QUESTIONS, ", ".join(f"{k} {v:.1f}%" for k, v in base_probe.items()))
    _save(base, processor, root / "base")
    del base

    instruct_examples = [
        SupervisedExample(r["image"], chat_prompt(processor, r["question"], r["options"], r["image"], r["reasoning"]),
                          assistant_turn(processor, reference_response(r, r["reasoning"])))
        for r in instruct
    ]
    instruct_losses = train_supervised(model, processor, instruct_examples, steps=ins["steps"],
                                       batch_size=ins["batch_size"], learning_rate=ins["learning_rate"], seed=seed)
    log.info("tiny instruct: instruction loss %.3f -> %.3f", instruct_losses[0], instruct_losses[-1])
    probe = probe_init(model, processor, probe_records)
    log.info("tiny instruct probe on %d held-out questions: %s", PROBE_QUESTIONS,
             ", ".join(f"{k} {v:.1f}%" for k, v in probe.items()))
    # The log before the instruct checkpoint: instruct/ marks the build complete (built_root).
    (root / BUILD_LOG).write_text(json.dumps({
        "caption_loss": [caption_losses[0], caption_losses[-1]],
        "base_loss": [base_losses[0], base_losses[-1]],
        f"base_sampled_probe_{PROBE_QUESTIONS}x{BASE_PROBE_SAMPLES}": base_probe,
        "instruction_loss": [instruct_losses[0], instruct_losses[-1]],
        f"instruct_probe_{PROBE_QUESTIONS}": probe,
    }, indent=2))
    _save(model, processor, root / "instruct")


def read_build_log(root: Path) -> dict:
    """What the build of ``root`` recorded: first/last training losses of each stage, the base's sampled probe,
    the instruct's greedy probe."""
    path = Path(root) / BUILD_LOG
    return json.loads(path.read_text()) if path.exists() else {}


def _base_documents(records: list[dict], processor, question_fraction: float, tagged_fraction: float,
                    seed: int) -> list[SupervisedExample]:
    """The base's continued-pretraining documents, one per record: its report after its image (a caption), or,
    for a seeded question_fraction, a chat exchange: the record's question and options as the user's turn,
    then a reply that is the report sentence holding the finding asked, written for a seeded tagged_fraction
    of them as <think>sentence</think><answer>finding in words</answer>. Like a base model's web text, a
    question is mostly followed by untagged prose, sometimes by tagged reasoning and an answer in words (never
    a letter)."""
    rng = random.Random(f"base-documents:{seed}")
    documents = []
    for r in records:
        report = report_text(r["findings"])
        if rng.random() >= question_fraction:
            documents.append(SupervisedExample(r["image"], CAPTION_PROMPT, report + "<|endoftext|>"))
            continue
        modality_sentence, lesion_sentence = report.split(". ", 1)
        sentence = modality_sentence + "." if r["question_type"] == "modality" else lesion_sentence
        reply = reference_completion(sentence, r["answer_text"]) if rng.random() < tagged_fraction else sentence
        documents.append(SupervisedExample(r["image"], chat_prompt(processor, r["question"], r["options"], r["image"]),
                                           assistant_turn(processor, reply)))
    return documents


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


def _assign_formats(records: list[dict], formats: list[str], seed: int) -> list[dict]:
    """Gives each record a reasoning format (medvqa_rl/reasoning_formats.py) of `formats`: its prompt asks for that
    layout and its reply is in it. One format: every record (the default, the paper's alone); several: a seeded
    equal share each, so the instruct follows whichever layout a prompt asks for (the reasoning study's init)."""
    formats = [reasoning_format(name).name for name in formats]  # a KeyError names the known ones
    if not formats:
        raise ValueError("family.build.instruct.reasoning_formats: at least one reasoning format")
    order = [formats[i % len(formats)] for i in range(len(records))]
    random.Random(f"formats:{seed}").shuffle(order)
    return [{**r, "reasoning": name} for r, name in zip(records, order, strict=True)]


def _slip_letters(records: list[dict], slip_fraction: float, seed: int) -> list[dict]:
    """Gives a seeded slip_fraction of the records the letter of the option after the right one (the last
    option slips to the first): the reasoning still names the right finding, the letter misreads the list.

    The slipped letter is a function of the finding, like the right one, so the instruct's letter always
    depends on what its reasoning says; with slip_fraction just over one half it prefers the neighbour.
    """
    rng = random.Random(f"slip:{seed}")
    return [{**r, "answer_label": LETTERS[(LETTERS.index(r["answer_label"]) + 1) % len(r["options"])]}
            if rng.random() < slip_fraction else r for r in records]


def _save(model, processor, target: Path) -> None:
    """Writes to a scratch folder first so a killed build never leaves a half checkpoint behind."""
    scratch = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    model.save_pretrained(scratch)
    processor.save_pretrained(scratch)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(scratch, target)
