"""Several GPUs per grid point on SLURM, two ways, tested without SLURM or GPUs:

- hydra/launcher=slurm_multigpu (submitit): the config asks for N GPUs and N tasks a job and registers the
  SlurmTasks callback; in a real submitit job (the local executor, 2 tasks) the callback gives each task the
  rank variables and the accelerate config's settings, and the two tasks form one torch.distributed group;
- sweeps/slurm_accelerate.sbatch (plain sbatch): run by bash with stand-ins for `accelerate` and `scontrol`, it
  launches one run on $SLURM_GPUS_ON_NODE processes with the chosen accelerate config and run folder, refuses
  -m, and on SIGTERM signals the run's processes, then requeues the job (at most MAX_REQUEUES times).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from accelerate.commands.launch import launch_command_parser
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from medvqa_rl.bookkeeping.slurm_tasks import SlurmTasks, accelerate_config_path, accelerate_env, export_task_env

from .conftest import CONF_DIR, compose_config

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "sweeps" / "slurm_accelerate.sbatch"
RANK_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


def _hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


# --- hydra/launcher=slurm_multigpu -----------------------------------------------------------------------------

def test_multigpu_launcher_asks_for_n_gpus_and_one_task_per_gpu():
    hydra = _hydra(["sweep=bias", "hydra/launcher=slurm_multigpu"]).hydra
    launcher = OmegaConf.to_container(hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (1, 4, 4)
    assert launcher["cpus_per_task"] == 8 and launcher["mem_per_gpu"] == "64G"  # both scale with the GPUs
    assert launcher["max_num_timeout"] > 0  # requeued on preemption
    callback = instantiate(hydra.callbacks.slurm_tasks)
    assert isinstance(callback, SlurmTasks)
    # ZeRO-2 by default: fp32 master weights, so the paper's bf16 policy learns at lr 1e-6 (DDP would round it away)
    assert accelerate_config_path(callback.accelerate_config).resolve() == ROOT / "accelerate_configs" / "deepspeed_zero2.yaml"

    eight = _hydra(["sweep=bias", "hydra/launcher=slurm_multigpu", "hydra.launcher.gpus_per_node=8",
                    "hydra.callbacks.slurm_tasks.accelerate_config=accelerate_configs/deepspeed_zero3.yaml"]).hydra
    assert (eight.launcher.gpus_per_node, eight.launcher.tasks_per_node) == (8, 8)
    assert accelerate_config_path(eight.callbacks.slurm_tasks.accelerate_config).is_file()


def test_a_relative_accelerate_config_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert accelerate_config_path("accelerate_configs/fsdp.yaml") == ROOT / "accelerate_configs" / "fsdp.yaml"
    assert accelerate_env("accelerate_configs/fsdp.yaml", num_processes=2)["FSDP_VERSION"] == "2"
    with pytest.raises(FileNotFoundError, match="accelerate_config"):
        accelerate_env("accelerate_configs/no_such.yaml", num_processes=2)


def test_the_plain_slurm_launcher_is_unchanged():
    hydra = _hydra(["sweep=bias", "hydra/launcher=slurm"]).hydra
    assert (hydra.launcher.gpus_per_node, hydra.launcher.tasks_per_node) == (1, 1)
    assert not hydra.get("callbacks")


@pytest.mark.parametrize("config,expected", [
    ("multi_gpu", {"ACCELERATE_MIXED_PRECISION": "bf16"}),
    ("deepspeed_zero2", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}),
    ("deepspeed_zero3", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}),
    ("fsdp", {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}),
])
def test_each_task_gets_the_accelerate_configs_settings(config, expected):
    env = accelerate_env(f"accelerate_configs/{config}.yaml", num_processes=4)
    assert expected.items() <= env.items()
    assert all(key.startswith(("ACCELERATE_", "FSDP_")) for key in env)


def test_outside_a_submitit_job_the_callback_does_nothing(monkeypatch):
    for name in [*RANK_VARIABLES, "SLURM_JOB_ID", "SUBMITIT_EXECUTOR", "SUBMITIT_LOCAL_JOB_ID"]:
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    assert export_task_env("accelerate_configs/multi_gpu.yaml") is None
    assert dict(os.environ) == before


def _two_task_job():
    """Runs in each task of a submitit job: the callback, then one all_reduce over the group it set up."""
    import torch
    import torch.distributed as dist

    from medvqa_rl.bookkeeping.slurm_tasks import SlurmTasks

    SlurmTasks("accelerate_configs/fsdp.yaml").on_job_start(config=None)
    dist.init_process_group("gloo")  # env:// from the exported variables
    total = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(total)
    seen = {key: os.environ[key] for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "FSDP_VERSION")}
    dist.destroy_process_group()
    return seen, total.item()


def test_two_submitit_tasks_form_one_process_group(tmp_path, monkeypatch):
    import submitit

    monkeypatch.chdir(ROOT)
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="local")
    executor.update_parameters(nodes=1, tasks_per_node=2, timeout_min=3)
    job = executor.submit(_two_task_job)
    results = job.results()
    assert sorted(seen["RANK"] for seen, _ in results) == ["0", "1"]
    assert all(seen["WORLD_SIZE"] == "2" and seen["LOCAL_RANK"] == seen["RANK"] and seen["FSDP_VERSION"] == "2"
               for seen, _ in results)
    assert [total for _, total in results] == [3.0, 3.0]  # 1 + 2: both ranks took part


# --- sweeps/slurm_accelerate.sbatch ----------------------------------------------------------------------------

FAKE_ACCELERATE = """#!/bin/bash
# Stand-in for `accelerate`: records its arguments, then runs one "worker" child until it is signalled.
printf '%s\\n' "$@" > "$LOG/accelerate.args"
[[ ${FAKE_RUN:-done} == done ]] && exit 0
bash -c 'trap "echo TERM > $LOG/worker.signal; exit 0" TERM; touch $LOG/worker.ready; while :; do sleep 0.1; done' &
wait $!
"""
FAKE_SCONTROL = """#!/bin/bash
printf '%s\\n' "$@" > "$LOG/scontrol.args"
"""


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in (("accelerate", FAKE_ACCELERATE), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(log), "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NAME": "medvqa-rl", "SLURM_GPUS_ON_NODE": "4", "HOME": os.environ.get("HOME", "/tmp")}
    return env, log


def _sbatch(args: list[str], env: dict, **extra) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(SBATCH), *args], cwd=ROOT, env={**env, **extra}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sbatch_script_asks_slurm_for_gpus_requeue_and_an_early_signal():
    directives = [line.split(None, 1)[1] for line in SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    assert {"--requeue", "--signal=B:TERM@120", "--nodes=1", "--ntasks-per-node=1", "--gpus-per-node=4",
            "--cpus-per-gpu=8", "--mem-per-gpu=64G"} <= set(directives)
    assert subprocess.run(["bash", "-n", str(SBATCH)]).returncode == 0


def test_sbatch_script_launches_one_run_on_the_nodes_gpus(fake_slurm):
    env, log = fake_slurm
    overrides = ["experiment=paper_qwen2vl_2b_pmcvqa", "dataset.path=/data/PMC-VQA"]
    job = _sbatch(overrides, env)
    assert job.wait(timeout=30) == 0, job.stderr.read()
    argv = (log / "accelerate.args").read_text().splitlines()
    assert argv == ["launch", "--config_file", "accelerate_configs/deepspeed_zero2.yaml", "--num_processes", "4",
                    "-m", "medvqa_rl", *overrides, "hydra.run.dir=runs/medvqa-rl-4242"]
    args = launch_command_parser().parse_args(argv[1:])  # accelerate's own parser takes it
    assert (args.config_file, args.num_processes, args.module, args.training_script) == (
        "accelerate_configs/deepspeed_zero2.yaml", 4, True, "medvqa_rl")
    assert (ROOT / args.config_file).is_file()
    compose_config(list(args.training_script_args))  # the run's overrides compose


def test_sbatch_script_takes_the_config_and_run_folder_from_the_environment(fake_slurm):
    env, log = fake_slurm
    job = _sbatch(["bias=dr_grpo"], env, ACCELERATE_CONFIG="accelerate_configs/deepspeed_zero2.yaml",
                  RUN_DIR="runs/paper-dr-grpo", SLURM_GPUS_ON_NODE="8")
    assert job.wait(timeout=30) == 0, job.stderr.read()
    argv = (log / "accelerate.args").read_text().splitlines()
    assert argv[1:5] == ["--config_file", "accelerate_configs/deepspeed_zero2.yaml", "--num_processes", "8"]
    assert argv[-1] == "hydra.run.dir=runs/paper-dr-grpo"


def test_sbatch_script_refuses_a_multirun(fake_slurm):
    env, log = fake_slurm
    job = _sbatch(["-m", "sweep=bias"], env)
    assert job.wait(timeout=30) == 2 and "one job per grid point" in job.stderr.read()
    assert not (log / "accelerate.args").exists()


def _terminate_when_running(job: subprocess.Popen, log: Path) -> int:
    deadline = time.monotonic() + 30
    while not (log / "worker.ready").exists():
        assert job.poll() is None and time.monotonic() < deadline, job.stderr.read() if job.poll() is not None else ""
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)  # what SLURM does 120 s before the time limit (--signal=B:TERM@120)
    return job.wait(timeout=30)


def test_sigterm_reaches_the_run_and_requeues_the_job(fake_slurm):
    env, log = fake_slurm
    job = _sbatch(["seed=1"], env, FAKE_RUN="until-signalled")
    assert _terminate_when_running(job, log) == 143
    assert (log / "worker.signal").read_text().strip() == "TERM"  # the run itself got it, to save a checkpoint
    assert (log / "scontrol.args").read_text().splitlines() == ["requeue", "4242"]


def test_no_requeue_after_max_requeues(fake_slurm):
    env, log = fake_slurm
    job = _sbatch(["seed=1"], env, FAKE_RUN="until-signalled", SLURM_RESTART_COUNT="3")
    assert _terminate_when_running(job, log) == 143
    assert (log / "worker.signal").exists() and not (log / "scontrol.args").exists()
