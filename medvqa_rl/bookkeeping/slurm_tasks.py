"""One process per GPU in a submitit job (hydra/launcher=slurm_multigpu), as `accelerate launch` would start them.

Hydra's submitit launcher runs each grid point as one SLURM job; with `tasks_per_node: N` SLURM starts N copies
of the Hydra job, one per GPU. This Hydra callback runs in each of them before the run starts and exports what
`accelerate launch --config_file <cfg> --num_processes N` gives its processes: torch.distributed's env://
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, from submitit's job environment) and the
accelerate config's own settings (ACCELERATE_MIXED_PRECISION, ACCELERATE_USE_DEEPSPEED, FSDP_*, ..., built by
accelerate's launcher code). The run then finds a multi-process state exactly as under `accelerate launch`.
Outside a submitit job, or with one task, it does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # holds accelerate_configs/
ENV_PREFIXES = ("ACCELERATE_", "FSDP_")  # the launcher's settings; not its rendezvous or thread variables


def accelerate_config_path(path: str) -> Path:
    """A relative path is looked up in the working directory, then in the project (accelerate_configs/...)."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return PROJECT_ROOT / candidate


def accelerate_env(config_file: str, num_processes: int) -> dict[str, str]:
    """The ACCELERATE_* / FSDP_* variables `accelerate launch --config_file config_file --num_processes N` sets
    for its processes, from accelerate's own launcher code (so DeepSpeed and FSDP configs behave the same)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    path = accelerate_config_path(config_file)
    if not path.is_file():
        raise FileNotFoundError(f"hydra.callbacks.slurm_tasks.accelerate_config: no file {config_file}")
    argv = ["--config_file", str(path), "--num_processes", str(num_processes), "-m", "medvqa_rl"]
    args, defaults, mixed_precision_from_config = _validate_launch_command(launch_command_parser().parse_args(argv))
    if args.use_deepspeed:  # as `accelerate launch` fills it before building DeepSpeed's environment
        args.deepspeed_fields_from_accelerate_config = ",".join(
            [*defaults.deepspeed_config, *(["mixed_precision"] if mixed_precision_from_config else [])])
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    return {key: value for key, value in env.items() if key.startswith(ENV_PREFIXES)}


def export_task_env(accelerate_config: str | None) -> dict[str, str] | None:
    """In a submitit job with several tasks: export this task's rank variables and the accelerate config's
    settings into os.environ and return them; else None."""
    import submitit
    from submitit.helpers import TorchDistributedEnvironment

    try:
        job = submitit.JobEnvironment()
        tasks = job.num_tasks
    except RuntimeError:  # not inside a submitit job
        return None
    if tasks < 2:
        return None
    # CUDA_VISIBLE_DEVICES stays as SLURM set it: accelerate picks cuda:LOCAL_RANK among the job's GPUs.
    # overwrite: a requeued job or a nested launch may have left the variables of an earlier start.
    dist = TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    exported = {"MASTER_ADDR": dist.master_addr, "MASTER_PORT": str(dist.master_port), "RANK": str(dist.rank),
                "WORLD_SIZE": str(dist.world_size), "LOCAL_RANK": str(dist.local_rank),
                "LOCAL_WORLD_SIZE": str(dist.local_world_size)}
    if accelerate_config:
        settings = accelerate_env(accelerate_config, tasks)
        os.environ.update(settings)
        exported.update(settings)
    return exported


class SlurmTasks(Callback):
    """Hydra callback of conf/hydra/launcher/slurm_multigpu.yaml (hydra.callbacks.slurm_tasks)."""

    def __init__(self, accelerate_config: str | None = None) -> None:
        self.accelerate_config = accelerate_config

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        export_task_env(self.accelerate_config)
