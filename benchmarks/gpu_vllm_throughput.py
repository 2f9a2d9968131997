"""GPU check (issue 27): generation throughput of transformers' generate vs vLLM, and one GRPO step's time split,
on a Qwen2-VL with Qwen2-VL-2B's published architecture (random weights built from its config: no download) at the
paper's settings: G = 8 completions per prompt, 512 new tokens, realistic image sizes.

The tokenizer and chat template are the shipped tiny model's (its special-token ids are written into the config);
the vocabulary stays Qwen2-VL-2B's 151,936 rows, so the embedding and LM head cost what they cost at 2B. Random
weights rarely emit a stop token, and every completion is forced to exactly --new-tokens tokens (min length /
ignore_eos), so both engines do the same work. Times are wall clock after CUDA synchronisation; the first call of
each engine is a warm-up and is not counted.

Phases of one GRPO step (TRL's GRPOTrainer, timed by wrapping its methods on the instance, not changing them):
  generation      GRPOTrainer._generate (transformers generate or vLLM colocate, with the weight sync)
  no-grad logps   _get_per_token_logps_and_entropies without grad (the reference model's log-probs, KL beta > 0,
                  and the old policy's where TRL needs them)
  policy forward  the same with grad (the loss's forward)
  backward        accelerator.backward
  rest            the step's remainder (rewards, optimizer step, ...)

Needs a CUDA GPU and vLLM 0.32 (pip install -e '.[vllm]'). Usage:
  python benchmarks/gpu_vllm_throughput.py [--prompts 8] [--new-tokens 512] [--image-size 448] [--skip-grpo]
Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from medvqa_rl.models.shipped_tiny import SHIPPED_DIR
from medvqa_rl.prompts import chat_prompt, prompt_conversation

G = 8
# Qwen/Qwen2-VL-2B(-Instruct)'s published config.json, in transformers 5's key names.
QWEN2_VL_2B_TEXT = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                        num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                        rms_norm_eps=1e-6, hidden_act="silu", use_sliding_window=False, sliding_window=32768,
                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                         "mrope_section": [16, 24, 24]})
QWEN2_VL_2B_VISION = dict(depth=32, embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16, in_channels=3,
                          patch_size=14, spatial_merge_size=2, temporal_patch_size=2, hidden_act="quick_gelu")
MIN_PIXELS, MAX_PIXELS = 56 * 56, 28 * 28 * 1280  # Qwen2-VL's processor defaults


def qwen2_vl_2b_config(tokenizer):
    """Qwen2-VL-2B's published architecture (QWEN2_VL_2B_TEXT / _VISION) with `tokenizer`'s special-token ids."""
    from transformers import Qwen2VLConfig

    ids = tokenizer.convert_tokens_to_ids
    text = QWEN2_VL_2B_TEXT | dict(bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                                   pad_token_id=ids("<|endoftext|>"))
    return Qwen2VLConfig(text_config=text, vision_config=QWEN2_VL_2B_VISION, tie_word_embeddings=True,
                         image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                         vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))


def build_checkpoint(folder: Path, dtype: torch.dtype) -> Path:
    """A random-weight Qwen2-VL-2B (architecture from the config above) with the tiny model's tokenizer, saved to
    `folder` so that both transformers and vLLM load the same weights."""
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    tiny = AutoProcessor.from_pretrained(SHIPPED_DIR / "instruct")
    tokenizer = tiny.tokenizer
    config = qwen2_vl_2b_config(tokenizer)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2VLForConditionalGeneration(config).to(dtype)
    model.save_pretrained(folder)
    processor = type(tiny)(image_processor=Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2,
                                                                 min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS),
                           tokenizer=tokenizer, video_processor=tiny.video_processor,
                           chat_template=tiny.chat_template)
    processor.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


def records(n: int, image_size: int) -> list[dict]:
    """n multiple-choice questions on image_size x image_size random scans."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        pixels = (torch.rand(image_size, image_size, 3, generator=generator) * 255).to(torch.uint8).numpy()
        out.append({"id": f"q{i}", "image": Image.fromarray(pixels), "question": "Which finding is shown?",
                    "options": ["Normal", "Effusion", "Nodule", "Fracture"], "answer_label": "A",
                    "answer_text": "Normal", "rationale": "", "question_type": "finding"})
    return out


def synchronized() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def hf_throughput(folder: Path, batch: list[dict], new_tokens: int, dtype: torch.dtype) -> dict:
    """transformers' generate: every prompt's G sampled completions in one batch (num_return_sequences)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa").cuda().eval()
    inputs = processor.apply_chat_template(
        [prompt_conversation(r["question"], r["options"], r["image"]) for r in batch], tokenize=True,
        add_generation_prompt=True, return_dict=True, return_tensors="pt",
        processor_kwargs={"padding": True, "padding_side": "left"}).to("cuda")
    settings = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, num_return_sequences=G,
                    max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=processor.tokenizer.pad_token_id)
    times = []
    for _ in range(2):  # warm-up, timed
        start = synchronized()
        with torch.no_grad():
            out = model.generate(**inputs, **settings)
        times.append(synchronized() - start)
    tokens = (out.shape[1] - inputs["input_ids"].shape[1]) * out.shape[0]
    prompt_tokens = int(inputs["attention_mask"].sum())
    del model
    torch.cuda.empty_cache()
    return {"seconds": times[-1], "tokens": tokens, "tokens_per_s": tokens / times[-1], "prompt_tokens": prompt_tokens,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30}


def vllm_throughput(folder: Path, batch: list[dict], new_tokens: int, dtype: str, memory: float) -> dict:
    """vLLM's offline engine: the same prompts (same text and images), n = G, forced to new_tokens."""
    from transformers import AutoProcessor
    from vllm import LLM, SamplingParams

    processor = AutoProcessor.from_pretrained(folder)
    start = time.perf_counter()
    llm = LLM(model=str(folder), dtype=dtype, gpu_memory_utilization=memory, seed=0, generation_config="vllm",
              limit_mm_per_prompt={"image": 1, "video": 0}, max_model_len=4096)
    startup = time.perf_counter() - start
    prompts = [{"prompt": chat_prompt(processor, r["question"], r["options"], r["image"]),
                "multi_modal_data": {"image": r["image"]}} for r in batch]
    params = SamplingParams(n=G, temperature=1.0, top_k=-1, top_p=1.0, max_tokens=new_tokens, min_tokens=new_tokens,
                            ignore_eos=True, detokenize=False)
    times = []
    for _ in range(2):  # warm-up, timed
        start = synchronized()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        times.append(synchronized() - start)
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    prompt_tokens = sum(len(o.prompt_token_ids) for o in outputs)
    del llm
    torch.cuda.empty_cache()
    return {"seconds": times[-1], "tokens": tokens, "tokens_per_s": tokens / times[-1], "prompt_tokens": prompt_tokens,
            "startup_s": startup}


class PhaseTimer:
    """Wraps a GRPOTrainer instance's methods to add up wall time per phase of a step (see the module docstring)."""

    def __init__(self, trainer):
        self.totals = {"generation": 0.0, "no-grad logps": 0.0, "policy forward": 0.0, "backward": 0.0}
        self._wrap(trainer, "_generate", lambda *a, **k: "generation")
        self._wrap(trainer, "_get_per_token_logps_and_entropies",
                   lambda *a, **k: "policy forward" if torch.is_grad_enabled() else "no-grad logps")
        self._wrap(trainer.accelerator, "backward", lambda *a, **k: "backward")

    def _wrap(self, owner, name, phase_of):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            phase = phase_of(*args, **kwargs)
            start = synchronized()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[phase] += synchronized() - start

        setattr(owner, name, timed)

    def reset(self):
        self.totals = dict.fromkeys(self.totals, 0.0)


def grpo_step_split(folder: Path, batch: list[dict], new_tokens: int, use_vllm: bool, memory: float) -> dict:
    """Seconds per phase of the second of two GRPO steps (the first warms up): one prompt x G completions per step,
    beta 0.04 (a reference model), bf16, full fine-tuning, TRL's colocate mode when use_vllm."""
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from medvqa_rl.prompts import prompt_messages

    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29533")):
        os.environ.setdefault(key, value)  # colocate mode runs vLLM inside this (one-process) torch.distributed job
    processor = AutoProcessor.from_pretrained(folder)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.bfloat16)
    dataset = Dataset.from_list([{"prompt": prompt_messages(r["question"], r["options"]), "image": r["image"]}
                                 for r in batch])

    def constant(completions, **kwargs):  # the reward's cost is not what is measured; a spread keeps advantages
        return [float(len(c[0]["content"]) % 7) for c in completions]

    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(output_dir=out, max_steps=2, learning_rate=1e-6, per_device_train_batch_size=G,
                          num_generations=G, max_completion_length=new_tokens, temperature=1.0, top_k=0, top_p=1.0,
                          beta=0.04, loss_type="grpo", scale_rewards="group", bf16=True, logging_steps=1,
                          save_strategy="no", report_to="none", disable_tqdm=True, use_vllm=use_vllm,
                          vllm_mode="colocate", vllm_gpu_memory_utilization=memory, seed=0,
                          generation_kwargs={"min_new_tokens": new_tokens} if not use_vllm else {"min_tokens": new_tokens})
        trainer = GRPOTrainer(model=model, reward_funcs=[constant], args=args, train_dataset=dataset,
                              processing_class=processor)
        timer = PhaseTimer(trainer)
        steps = []

        class StepClock(TrainerCallback):
            def on_step_begin(self, *a, **k):
                timer.reset()
                self.start = synchronized()

            def on_step_end(self, *a, **k):
                steps.append((synchronized() - self.start, dict(timer.totals)))

        trainer.add_callback(StepClock())
        trainer.train()
    total, phases = steps[-1]
    del trainer, model
    torch.cuda.empty_cache()
    return {"step_s": total, **phases, "rest": total - sum(phases.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help="prompts per generation batch (x G completions)")
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=448, help="square scans: 448 px -> 256 image tokens")
    parser.add_argument("--vllm-memory", type=float, default=0.5, help="vLLM's gpu_memory_utilization")
    parser.add_argument("--skip-grpo", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    result = {"gpu": torch.cuda.get_device_name(), "G": G, "new_tokens": args.new_tokens, "prompts": args.prompts,
              "image_size": args.image_size}
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_checkpoint(Path(tmp) / "qwen2vl2b-random", torch.bfloat16)
        batch = records(args.prompts, args.image_size)
        result["hf"] = hf_throughput(folder, batch, args.new_tokens, torch.bfloat16)
        print("generate:", result["hf"], flush=True)
        result["vllm"] = vllm_throughput(folder, batch, args.new_tokens, "bfloat16", args.vllm_memory)
        print("vLLM:", result["vllm"], flush=True)
        if not args.skip_grpo:
            result["grpo_hf"] = grpo_step_split(folder, batch[:1], args.new_tokens, False, args.vllm_memory)
            print("GRPO step, generate:", result["grpo_hf"], flush=True)
            result["grpo_vllm"] = grpo_step_split(folder, batch[:1], args.new_tokens, True, args.vllm_memory)
            print("GRPO step, vLLM colocate:", result["grpo_vllm"], flush=True)
    hf, vl = result["hf"], result["vllm"]
    print(f"\n{result['gpu']}: {args.prompts} prompts x G={G}, {args.new_tokens} new tokens, "
          f"{args.image_size}px images ({hf['prompt_tokens'] // args.prompts} prompt tokens each)")
    print("| engine | seconds | completion tokens/s |")
    print("|---|---|---|")
    print(f"| transformers generate | {hf['seconds']:.1f} | {hf['tokens_per_s']:.0f} |")
    print(f"| vLLM (start-up {vl['startup_s']:.0f} s) | {vl['seconds']:.1f} | {vl['tokens_per_s']:.0f} |")
    for key, label in (("grpo_hf", "generate"), ("grpo_vllm", "vLLM colocate")):
        if key in result:
            split = result[key]
            print(f"GRPO step ({label}): {split['step_s']:.1f} s = " + ", ".join(
                f"{phase} {split[phase]:.1f}" for phase in ("generation", "no-grad logps", "policy forward",
                                                              "backward", "rest")))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
