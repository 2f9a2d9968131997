"""The shipped accelerate configs (accelerate_configs/): each loads through accelerate's own config loader, has
its distributed type, 4 processes and bf16, and `accelerate launch --config_file ... --num_processes N` turns
into the launcher settings the processes get (N processes, the ZeRO stage, FSDP2). No GPU or DeepSpeed needed:
only accelerate's parsing and environment-building code runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DistributedType
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "accelerate_configs"

EXPECTED = {  # file: (distributed type, launcher environment it must produce)
    "multi_gpu": (DistributedType.MULTI_GPU, {}),
    "deepspeed_zero2": (DistributedType.DEEPSPEED, {"ACCELERATE_USE_DEEPSPEED": "true",
                                                    "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}),
    "deepspeed_zero3": (DistributedType.DEEPSPEED, {"ACCELERATE_USE_DEEPSPEED": "true",
                                                    "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3",
                                                    "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL": "true"}),
    "fsdp": (DistributedType.FSDP, {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2",
                                    "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
                                    "FSDP_CPU_RAM_EFFICIENT_LOADING": "false"}),
}


def test_exactly_the_documented_configs_ship():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_through_accelerate_with_its_type_4_processes_and_bf16(name):
    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type == EXPECTED[name][0]
    assert (config.num_processes, config.num_machines, config.mixed_precision) == (4, 1, "bf16")
    assert not config.use_cpu


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_launch_with_the_config_overrides_the_process_count_and_sets_the_backend(name):
    """What `accelerate launch --config_file <cfg> --num_processes 2 -m medvqa_rl seed=1` hands its processes."""
    argv = ["--config_file", str(CONFIGS / f"{name}.yaml"), "--num_processes", "2", "-m", "medvqa_rl", "seed=1"]
    args, defaults, mixed_precision_from_config = _validate_launch_command(launch_command_parser().parse_args(argv))
    assert args.num_processes == 2 and args.mixed_precision == "bf16"
    assert (args.module, args.training_script, args.training_script_args) == (True, "medvqa_rl", ["seed=1"])
    kind = EXPECTED[name][0]
    assert (args.multi_gpu, args.use_deepspeed, args.use_fsdp) == (
        kind == DistributedType.MULTI_GPU, kind == DistributedType.DEEPSPEED, kind == DistributedType.FSDP)
    if args.use_deepspeed:  # as `accelerate launch` itself fills it before building the DeepSpeed environment
        args.deepspeed_fields_from_accelerate_config = ",".join(
            [*defaults.deepspeed_config, *(["mixed_precision"] if mixed_precision_from_config else [])])
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert EXPECTED[name][1].items() <= env.items()
