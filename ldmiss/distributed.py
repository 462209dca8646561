"""Data-parallel training of one model over several processes (``torchrun``), in the one training loop.

``torchrun --nproc_per_node G -m ldmiss.cli train …`` starts G processes; :func:`init_from_env`
joins them into a process group (NCCL on GPUs, gloo on the CPU) and gives each its GPU. Inside
:func:`ldmiss.training.train` every rank draws the same epoch permutation and takes its own slice
of each global batch (``batch_size`` stays the global batch), draws its own noise from a
rank-specific generator, and averages gradients with the others before the step, so all ranks hold
the same weights and EMA at every step; only rank 0 shows progress, writes checkpoints and saves
the model. One process (no torchrun) is exactly the single-process loop.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from . import rng


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: str = "auto") -> str:
    """Join the process group torchrun describes in the environment (``WORLD_SIZE`` > 1) and return
    this rank's device; without torchrun, return ``device`` unchanged."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or active():
        return device
    use_cuda = torch.cuda.is_available() and device != "cpu"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu"


def finish() -> None:
    """Wait for every rank (rank 0 may still be saving), then leave the process group. Why: a rank
    that exits while a peer still holds the gloo connection can abort that peer (SIGABRT)."""
    if active():
        dist.barrier()
        dist.destroy_process_group()


def average_gradients(params) -> None:
    """All ranks' gradients → their mean, in place (one all-reduce per parameter)."""
    n = world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(n)


def rank_generator(generator: torch.Generator) -> torch.Generator:
    """A noise generator for this rank, seeded from the shared ``generator``'s seed and the rank, so
    ranks draw different noise reproducibly; it takes nothing from the shared stream, which every
    rank keeps in step for the batch order."""
    return rng.child(generator, rank() + 1)
