"""The processes of a run: one, or several under `accelerate launch` / `torchrun`. The process group is set up
once, here, before anything else asks for it.

- On a machine without a GPU (or with ACCELERATE_USE_CPU=true) the ranks are gloo CPU ranks: accelerate's
  default PartialState() would stay a single process there even under torchrun.
- Collectives wait COLLECTIVE_TIMEOUT: while the main process scores the gathered evaluation (judge,
  similarity), the other ranks wait at the next collective, and NCCL's default 10 minutes is too short
  for a 7B judge over 7,000 answers.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
from accelerate import PartialState
from accelerate.utils import gather_object

COLLECTIVE_TIMEOUT = timedelta(hours=3)


def process_state() -> PartialState:
    """This process's PartialState, initialised on first use as described above."""
    cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return PartialState(cpu=cpu, timeout=COLLECTIVE_TIMEOUT)


def shard_bounds(n: int) -> tuple[int, int]:
    """[start, stop) of this process's contiguous share of n items; shares in rank order cover 0..n once."""
    state = process_state()
    return n * state.process_index // state.num_processes, n * (state.process_index + 1) // state.num_processes


def gather_shards(share: list) -> list:
    """Every process's list, concatenated in rank order (every process gets the whole list)."""
    return gather_object(share) if process_state().num_processes > 1 else list(share)
