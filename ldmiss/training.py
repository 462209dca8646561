"""The one training loop every model uses: minibatch Adam, gradient clipping, EMA, a progress bar.

Training length is a number of optimiser steps (not epochs or seconds) so a run is reproducible
and its cost predictable. Minibatches are drawn by a seeded generator from tensors held in memory.

With a ``checkpoint`` path the loop saves everything it depends on (weights, EMA, optimiser,
schedule, step, the generator's state and the epoch's permutation) every ``checkpoint_every``
seconds and at the end, atomically; a later call with the same path resumes from it, and on the
CPU the result is bit-identical to an uninterrupted run (for one process; a data-parallel run
resumes its weights and batch order exactly, its per-rank noise from a fresh per-rank stream).
Under ``torchrun`` (distributed.py) each rank trains on its slice of every global batch and
gradients are averaged, so every rank ends with the same weights. A finished checkpoint makes the call
return at once, so a multi-stage fit (DiffPuter's EM) replays its finished stages for free.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed, rng
from .config import constrain
from .errors import Diverged, UsageError

LR_SCHEDULES = ("constant", "cosine")  # lr_factor's shapes after warm-up


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    ema_decay: float = 0.999  # 0 disables EMA
    grad_clip: float = 1.0
    lr_schedule: str = "constant"  # "constant" or "cosine" (decay to min_lr_ratio·lr at the last step)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0


constrain("TrainConfig", steps=("range", 1, None), batch_size=("range", 1, None), lr=("range", 0.0, None),
          ema_decay=("range", 0.0, 1.0), grad_clip=("range", 0.0, None), lr_schedule=("choices", LR_SCHEDULES),
          warmup_steps=("range", 0, None), min_lr_ratio=("range", 0.0, 1.0))


class EMA:
    """Exponential moving average of a model's weights with the usual warm-up
    (decay_k = min(decay, (1 + k)/(10 + k))), so short runs are not dominated by the initialisation."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Multiplier of ``cfg.lr`` at optimiser step ``step``: linear warm-up over ``warmup_steps``, then
    ``constant`` or ``cosine`` decay to ``min_lr_ratio``·lr at the last step. Why cosine: a run of a
    fixed number of steps ends on a small learning rate, which removes the last steps' gradient
    noise from the weights (the role EMA plays for a constant rate)."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise UsageError(f"unknown lr_schedule {cfg.lr_schedule!r}; choose from ['constant', 'cosine']")


def _perm(n: int, generator: torch.Generator) -> torch.Tensor:
    """An epoch's order, as CPU indices into the CPU-held data."""
    return rng.randperm(n, generator)


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(model: nn.Module, loss_fn: Callable[..., torch.Tensor], data: Sequence[torch.Tensor], cfg: TrainConfig,
          generator: torch.Generator, desc: str = "train", progress: bool = True,
          device: torch.device | str = "cpu", checkpoint: str | Path | None = None,
          checkpoint_every: float = 300.0) -> tuple[nn.Module, dict]:
    """Optimise ``loss_fn(*batch, generator)`` over random minibatches of ``data``.

    Returns the model to use for inference (the EMA copy when ``cfg.ema_decay`` > 0) and a summary
    with the final smoothed loss and wall time. ``checkpoint``: resume from / save to this file
    (every ``checkpoint_every`` seconds of training, 0 = every step, and at the end).
    """
    n = len(data[0])
    if n == 0:
        raise UsageError("cannot train on an empty dataset")
    ranks, rank = distributed.world_size(), distributed.rank()
    bs = min(cfg.batch_size, n)
    if bs % ranks:
        raise UsageError(f"{desc}: batch_size {bs} must be divisible by the {ranks} data-parallel processes")
    local_bs = bs // ranks
    writes = distributed.is_main()  # rank 0 writes checkpoints; every rank resumes from them
    progress = progress and distributed.is_main()
    model.to(device).train().requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(cfg, k))
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    perm, pos = _perm(n, generator), 0
    smoothed, start, first, earlier = math.nan, time.perf_counter(), 0, 0.0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        if ema is not None:
            ema.model.load_state_dict(state["ema"])
            ema.updates = state["ema_updates"]
        generator.set_state(state["generator"])
        perm, pos, first, smoothed, earlier = state["perm"], state["pos"], state["step"], state["smoothed"], state["seconds"]
    noise = distributed.rank_generator(generator) if ranks > 1 else generator  # batch order shared, noise per rank

    def save(step: int) -> None:
        _save_checkpoint(checkpoint, {
            "step": step, "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "ema": ema.model.state_dict() if ema is not None else None, "ema_updates": ema.updates if ema else 0,
            "generator": generator.get_state(), "perm": perm, "pos": pos, "smoothed": smoothed,
            "seconds": earlier + time.perf_counter() - start})

    last_save = time.perf_counter()
    bar = tqdm(range(first, cfg.steps), desc=desc, disable=not progress, leave=False, mininterval=1.0,
               initial=first, total=cfg.steps)
    for step in bar:
        if pos + bs > n:
            perm, pos = _perm(n, generator), 0
        idx = perm[pos + rank * local_bs:pos + (rank + 1) * local_bs]
        pos += bs
        batch = [d[idx].to(device, non_blocking=True) for d in data]
        loss = loss_fn(*batch, noise)
        if not torch.isfinite(loss):
            raise Diverged(f"{desc}: the training loss became {loss.item()} at step {step + 1} of {cfg.steps}; "
                           f"lower its learning rate (train.lr = {cfg.lr:g}) or raise warmup_steps ({cfg.warmup_steps})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if ranks > 1:
            distributed.average_gradients(model.parameters())
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model)
        value = loss.item()
        smoothed = value if math.isnan(smoothed) else 0.98 * smoothed + 0.02 * value
        if step % 25 == 0:
            bar.set_postfix(loss=f"{smoothed:.4g}")
        if writes and checkpoint is not None and step + 1 < cfg.steps and time.perf_counter() - last_save >= checkpoint_every:
            save(step + 1)
            last_save = time.perf_counter()
    bar.close()
    if writes and checkpoint is not None and first < cfg.steps:
        save(cfg.steps)
    final = ema.model if ema is not None else model
    final.eval().requires_grad_(False)
    info = {"steps": cfg.steps, "final_loss": smoothed, "seconds": earlier + time.perf_counter() - start}
    if first:
        info["resumed_at"] = first
    return final, info
