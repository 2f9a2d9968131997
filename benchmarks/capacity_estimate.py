"""Capacity of the paper setting, computed (not measured): GPU memory per GPU under DDP, DeepSpeed ZeRO-2 and
ZeRO-3, and the time to generate the 7K-question evaluation with transformers' generate vs vLLM.

Parameter counts come from the checkpoints' shapes (Qwen2-VL-2B, BioMistral-7B = Mistral-7B), counted layer by
layer (tests/test_capacity_estimate.py checks the count against a model built on the meta device). Memory is
bytes per parameter x parameters / GPUs that share it (1 GB = 1e9 bytes):

- DDP (accelerate_configs/multi_gpu.yaml): every GPU holds everything. Rows assume fp32 weights under bf16
  autocast: 4 (weights) + 4 (gradients) + 8 (AdamW m, v) bytes per parameter. A policy loaded in bf16 keeps
  bf16 weights, gradients and AdamW states under DDP (8 bytes, half), but then an update of lr 1e-6 is below
  bf16's resolution (a weight of 0.02 moves in steps of 1.2e-4) and is rounded away;
- ZeRO-2: bf16 weights (2) replicated; bf16 gradients (2) and fp32 master weights + AdamW (12) sharded;
- ZeRO-3: all 16 bytes sharded (FSDP2 with mixed precision is the same: fp32 shards, bf16 all-gather);
- the reference model (beta > 0): bf16, replicated (sharded under ZeRO-3, where TRL prepares it with DeepSpeed);
- the judge (BioMistral-7B, bf16) on every process's GPU (judge.device=cuda, the overlay's choice).

Activations, rollout KV cache and allocator overhead come on top (a rough row, see --rollout-*).

Evaluation time: decoding a small model is bound by per-step latency, not FLOPs. transformers' generate runs
batches of --eval-batch questions to the longest answer (assumed --max-new-tokens) at --hf-step-ms per step;
vLLM batches continuously at --vllm-tokens-per-s output tokens per GPU. Both are assumptions for one A100 80 GB
and Qwen2-VL-2B in bf16 (set them from a measurement). Prefill of the prompts is not counted.
Usage: python benchmarks/capacity_estimate.py [--gpus 4] [--questions 7000] [--max-new-tokens 512]
"""

from __future__ import annotations

import argparse
import math

# Qwen/Qwen2-VL-2B(-Instruct) config.json (text model and vision tower)
QWEN2_VL_2B = {
    "text": {"vocab": 151_936, "hidden": 1_536, "intermediate": 8_960, "layers": 28, "heads": 12, "kv_heads": 2,
             "tied": True, "qkv_bias": True},
    "vision": {"depth": 32, "embed_dim": 1_280, "mlp_ratio": 4, "patch": 14, "temporal_patch": 2, "channels": 3,
               "merge": 2, "out_hidden": 1_536},
}
# BioMistral/BioMistral-7B: Mistral-7B's shape
MISTRAL_7B = {"vocab": 32_000, "hidden": 4_096, "intermediate": 14_336, "layers": 32, "heads": 32, "kv_heads": 8,
              "tied": False, "qkv_bias": False}

GB = 1e9
STRATEGIES = ("DDP", "ZeRO-2", "ZeRO-3")


def decoder_params(shape: dict) -> int:
    """A Llama-style decoder (Qwen2, Mistral): GQA attention, SwiGLU MLP, RMSNorms, embeddings (+ LM head)."""
    hidden, head_dim = shape["hidden"], shape["hidden"] // shape["heads"]
    kv = shape["kv_heads"] * head_dim
    attention = hidden * hidden * 2 + hidden * kv * 2  # q, o; k, v
    if shape["qkv_bias"]:
        attention += hidden + 2 * kv
    mlp = 3 * hidden * shape["intermediate"]  # gate, up, down
    layer = attention + mlp + 2 * hidden  # + input / post-attention RMSNorm
    embeddings = shape["vocab"] * hidden * (1 if shape["tied"] else 2)
    return shape["layers"] * layer + embeddings + hidden  # + final norm


def qwen2_vl_vision_params(shape: dict) -> int:
    """Qwen2-VL's ViT: 3D patch embedding, pre-LayerNorm blocks (fused qkv), the 2x2 patch merger."""
    dim = shape["embed_dim"]
    patch_embed = shape["channels"] * shape["temporal_patch"] * shape["patch"] ** 2 * dim  # conv3d, no bias
    mlp_dim = dim * shape["mlp_ratio"]
    block = (dim * 3 * dim + 3 * dim) + (dim * dim + dim) + (dim * mlp_dim + mlp_dim) + (mlp_dim * dim + dim) + 4 * dim
    merged = dim * shape["merge"] ** 2
    merger = 2 * dim + (merged * merged + merged) + (merged * shape["out_hidden"] + shape["out_hidden"])
    return patch_embed + shape["depth"] * block + merger


def qwen2_vl_params(shape: dict = QWEN2_VL_2B) -> int:
    return decoder_params(shape["text"]) + qwen2_vl_vision_params(shape["vision"])


def memory_rows(policy: int, judge: int, gpus: int, rollout_gb: float) -> list[tuple[str, dict[str, float]]]:
    """(row, {strategy: GB per GPU}) for the policy's weights, gradients, optimizer states, the reference
    model, the judge and their total."""
    shard = {"DDP": 1, "ZeRO-2": 1, "ZeRO-3": gpus}  # GPUs sharing the weights
    rows = [
        ("policy weights", {"DDP": 4 * policy, "ZeRO-2": 2 * policy, "ZeRO-3": 2 * policy / gpus}),
        ("gradients", {"DDP": 4 * policy, "ZeRO-2": 2 * policy / gpus, "ZeRO-3": 2 * policy / gpus}),
        ("optimizer states (AdamW m, v; + fp32 master weights under ZeRO)",
         {"DDP": 8 * policy, "ZeRO-2": 12 * policy / gpus, "ZeRO-3": 12 * policy / gpus}),
        ("reference model (bf16)", {s: 2 * policy / shard[s] for s in STRATEGIES}),
        ("judge BioMistral-7B (bf16)", {s: 2 * judge for s in STRATEGIES}),
    ]
    rows = [(name, {s: v / GB for s, v in values.items()}) for name, values in rows]
    rows.append(("total, states and models", {s: sum(values[s] for _, values in rows) for s in STRATEGIES}))
    rows.append(("+ activations and rollout KV cache (rough)", {s: rollout_gb for s in STRATEGIES}))
    return rows


def rollout_gb(policy_shape: dict, sequences: int, tokens: int, completion: int) -> float:
    """Rough: with gradient checkpointing, one hidden state per layer and sequence position (bf16), one layer's
    full activations (~16 hidden-sized tensors) during recomputation, the completion's logits in fp32 (the
    log-softmax) and the bf16 KV cache of the rollouts."""
    text = policy_shape["text"]
    positions = sequences * tokens
    checkpoints = text["layers"] * positions * text["hidden"] * 2
    layer = 16 * positions * text["hidden"] * 2
    logits = sequences * completion * text["vocab"] * 4
    kv = positions * text["layers"] * 2 * text["kv_heads"] * (text["hidden"] // text["heads"]) * 2
    return (checkpoints + layer + logits + kv) / GB


def eval_minutes(questions: int, gpus: int, max_new_tokens: int, eval_batch: int, hf_step_ms: float,
                 vllm_tokens_per_s: float) -> dict[str, float]:
    """Minutes to generate the whole test set, sharded over `gpus` processes."""
    per_gpu = math.ceil(questions / gpus)
    hf = math.ceil(per_gpu / eval_batch) * max_new_tokens * hf_step_ms / 1000
    vllm = per_gpu * max_new_tokens / vllm_tokens_per_s
    return {"transformers generate": hf / 60, "vLLM": vllm / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=4, help="processes / GPUs of one run (the paper: 4 A100)")
    parser.add_argument("--questions", type=int, default=7000, help="test questions (the paper: 7K)")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="completion budget")
    parser.add_argument("--eval-batch", type=int, default=32, help="eval.batch_size of the overlay")
    parser.add_argument("--hf-step-ms", type=float, default=30.0,
                        help="assumed ms per decoding step of transformers' generate, batch 32, 2B bf16, A100")
    parser.add_argument("--vllm-tokens-per-s", type=float, default=5000.0,
                        help="assumed vLLM output tokens per second per A100 for a 2B model")
    parser.add_argument("--rollout-sequences", type=int, default=8, help="completions per micro-batch (per GPU)")
    parser.add_argument("--rollout-tokens", type=int, default=1024, help="prompt (image + question) + completion")
    args = parser.parse_args()

    policy, judge = qwen2_vl_params(), decoder_params(MISTRAL_7B)
    print(f"Computed estimates, not measurements. Qwen2-VL-2B: {policy / 1e9:.2f}B parameters; "
          f"BioMistral-7B: {judge / 1e9:.2f}B; {args.gpus} GPUs.\n")
    print(f"| GB per GPU ({args.gpus} GPUs) | " + " | ".join(STRATEGIES) + " |")
    print("|---|" + "---:|" * len(STRATEGIES))
    extra = rollout_gb(QWEN2_VL_2B, args.rollout_sequences, args.rollout_tokens, args.max_new_tokens)
    for name, values in memory_rows(policy, judge, args.gpus, extra):
        print(f"| {name} | " + " | ".join(f"{values[s]:.1f}" for s in STRATEGIES) + " |")
    print()
    print(f"| generating {args.questions:,} answers x up to {args.max_new_tokens} tokens | 1 GPU | {args.gpus} GPUs |")
    print("|---|---:|---:|")
    one = eval_minutes(args.questions, 1, args.max_new_tokens, args.eval_batch, args.hf_step_ms,
                       args.vllm_tokens_per_s)
    many = eval_minutes(args.questions, args.gpus, args.max_new_tokens, args.eval_batch, args.hf_step_ms,
                        args.vllm_tokens_per_s)
    assumption = {"transformers generate": f"batch {args.eval_batch}, {args.hf_step_ms:g} ms a step",
                  "vLLM": f"{args.vllm_tokens_per_s:,.0f} tokens/s a GPU"}
    for engine in one:
        print(f"| {engine} ({assumption[engine]}) | {one[engine]:.0f} min | {many[engine]:.0f} min |")


if __name__ == "__main__":
    main()
