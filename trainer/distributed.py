"""torchrun/DDP plumbing: who am I, which device, and sums across processes.

Launched plainly, the trainer is one process (world size 1) and every helper here is a no-op.
Under `torchrun` (RANK/WORLD_SIZE/LOCAL_RANK set) it joins the process group: NCCL on GPUs,
gloo on CPU. On a host with several GPUs, a plain launch re-executes itself under torchrun with
one process per GPU, so the controller never needs to know how many GPUs the host has.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from trainer.errors import TrainerError


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_primary(self) -> bool:
        """Only the primary process writes files, logs and metrics."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def torchrun_argv(argv: list[str], processes: int) -> list[str]:
    """The command that reruns `python -m trainer <argv>` with one process per GPU."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "trainer",
        *argv,
    ]


def start(device_setting: str) -> Context:
    """Pick the device (auto|cuda|cpu) and join the process group when under torchrun."""
    if device_setting == "cuda" and not torch.cuda.is_available():
        raise TrainerError("training.device is cuda but no CUDA GPU is visible here.")
    use_cuda = device_setting != "cpu" and torch.cuda.is_available()
    if not launched_by_torchrun():
        return Context(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return Context(dist.get_rank(), dist.get_world_size(), device)


def stop(context: Context) -> None:
    if context.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    if context.world_size > 1:
        dist.barrier()


def sum_across(context: Context, tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over all processes (in place; returned for chaining)."""
    if context.world_size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gpus_to_spread_over(device_setting: str) -> int:
    """How many processes a plain launch should become (1: stay as we are)."""
    if launched_by_torchrun() or device_setting == "cpu" or not torch.cuda.is_available():
        return 1
    return torch.cuda.device_count()
