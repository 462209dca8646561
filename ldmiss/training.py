"""The one training loop every model uses: minibatch Adam, gradient clipping, EMA, a progress bar.

Training length is a number of optimiser steps (not epochs or seconds) so a run is reproducible
and its cost predictable. Minibatches are drawn by a seeded generator from tensors held in memory.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig


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
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}; choose from ['constant', 'cosine']")


def train(model: nn.Module, loss_fn: Callable[..., torch.Tensor], data: Sequence[torch.Tensor], cfg: TrainConfig,
          generator: torch.Generator, desc: str = "train", progress: bool = True,
          device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Optimise ``loss_fn(*batch, generator)`` over random minibatches of ``data``.

    Returns the model to use for inference (the EMA copy when ``cfg.ema_decay`` > 0) and a summary
    with the final smoothed loss and wall time.
    """
    n = len(data[0])
    if n == 0:
        raise ValueError("cannot train on an empty dataset")
    model.to(device).train().requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(cfg, k))
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    bs = min(cfg.batch_size, n)
    perm, pos = torch.randperm(n, generator=generator), 0
    smoothed, start = math.nan, time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for step in bar:
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=generator), 0
        idx = perm[pos:pos + bs]
        pos += bs
        batch = [d[idx].to(device, non_blocking=True) for d in data]
        loss = loss_fn(*batch, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
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
    bar.close()
    final = ema.model if ema is not None else model
    final.eval().requires_grad_(False)
    return final, {"steps": cfg.steps, "final_loss": smoothed, "seconds": time.perf_counter() - start}
