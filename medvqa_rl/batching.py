"""Questions per optimiser step kept whatever the number of processes (method.questions_per_step).

One optimiser step of a run on N processes consumes per_device_train_batch_size x gradient_accumulation_steps x N
examples (GRPO: completions, num_generations of them per question). A method that fixes its questions per step (the
paper overlay: 8 for GRPO, 32 for SFT and DPO) derives its accumulation from the process count in its config:

    gradient_accumulation_steps: ${medvqa_rl.accumulation:${.questions_per_step},${.num_generations},${.per_device_train_batch_size}}

so the paper's 8 questions a step are 8 x 8 / (8 x 4) = 2 accumulation steps on 4 GPUs, 8 on 1, 1 on 8, and the
budget (budget.examples) takes the same number of steps on every count. A count that cannot match (3, 16, ...) gives a
fraction, which medvqa_rl/config_checks.py refuses before anything loads. An explicit gradient_accumulation_steps on
the command line replaces the interpolation, and the record states the questions per step it gives.
"""

from __future__ import annotations

import os

from omegaconf import OmegaConf

RESOLVER = "medvqa_rl.accumulation"


def process_count() -> int:
    """The run's processes as its launcher announces them (WORLD_SIZE: `accelerate launch`, torchrun, the SLURM tasks'
    callback); 1 without a launcher. Read from the environment: composing a config must not start a process group."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def accumulation_steps(questions: int, per_question: int, per_device: int, processes: int) -> int | float:
    """Gradient accumulation steps for `questions` per optimiser step over `processes` processes, each taking
    `per_device` examples per micro-batch, `per_question` examples per question (GRPO: num_generations; SFT, DPO: 1).
    An int when it divides; else the exact quotient (a float, below 1 when the processes alone exceed the step), which
    the config check refuses."""
    examples, share = questions * per_question, per_device * processes
    return examples // share if examples % share == 0 else examples / share


def matching_process_counts(questions: int, per_question: int, per_device: int, up_to: int = 64) -> list[int]:
    """The process counts (1..up_to) on which `questions` per step can be kept exactly."""
    return [n for n in range(1, up_to + 1)
            if isinstance(accumulation_steps(questions, per_question, per_device, n), int)
            and accumulation_steps(questions, per_question, per_device, n) >= 1]


def register_resolver() -> None:
    """${medvqa_rl.accumulation:questions,per_question,per_device}: accumulation steps on this run's process count."""
    OmegaConf.register_new_resolver(
        RESOLVER, lambda questions, per_question, per_device: accumulation_steps(
            int(questions), int(per_question), int(per_device), process_count()), replace=True)
