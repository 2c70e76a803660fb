"""torchrun / DDP plumbing.

A script is distributed when torchrun set WORLD_SIZE > 1 in its environment. `setup()` then joins
the process group (nccl on CUDA, gloo on CPU) and pins each process to its local GPU; otherwise it
returns a single-process context and nothing else changes. `relaunch_under_torchrun()` lets a
stage started by `dvc repro` re-exec itself as K processes (train.nproc = K).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Extra torchrun arguments for multi-node runs (e.g. "--nnodes 2 --node-rank 0
# --rdzv-endpoint host0:29500 --rdzv-id wikigpt --rdzv-backend c10d"); default: one machine.
TORCHRUN_ARGS_ENV = "WIKIGPT_TORCHRUN_ARGS"


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str = "auto") -> torch.device:
    """auto: cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device_name: str = "auto") -> DistContext:
    device = pick_device(device_name)
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return DistContext(device=device)
    rank, local_rank, world = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, local_rank=local_rank, world_size=world, device=device)


def teardown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def relaunch_under_torchrun(nproc: int, script: str, args: list[str] | None = None) -> None:
    """Replace this process by `torchrun --nproc_per_node nproc script` (no return) unless we are
    already a torchrun worker or nproc == 1. Multi-node: set WIKIGPT_TORCHRUN_ARGS (see above)."""
    if nproc <= 1 or under_torchrun():
        return
    extra = shlex.split(os.environ.get(TORCHRUN_ARGS_ENV, "")) or ["--standalone"]
    argv = [sys.executable, "-m", "torch.distributed.run", *extra, f"--nproc_per_node={nproc}", script, *(args or [])]
    print(f"relaunching under torchrun: {shlex.join(argv[1:])}", file=sys.stderr, flush=True)
    os.execv(sys.executable, argv)


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA; full fp32 elsewhere (CPU bf16 is slower and less exact)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
