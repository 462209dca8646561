"""Reverse-time samplers for the VP-SDE.

Every sampler takes the same arguments: a ``score_fn(x, t)`` (plain, or a guidance wrapper from
:mod:`ldmiss.diffusion.guidance` that adds the conditional term), the SDE, the starting noise, the
number of steps, a generator, an optional ``project(x, t)`` applied after each step (replacement
imputation), RePaint ``resample_jumps``, and a ``progress`` callback called once per step.
"""
from __future__ import annotations

from typing import Callable

import torch

from .sde import VPSDE

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Project = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)


def _em_step(score_fn, sde, x, t, s, generator, last):
    """Euler–Maruyama step of dx = [−½βx − β∇log p]dt + √β dw̄ from t down to s."""
    tv = torch.full((x.shape[0],), float(t), device=x.device)
    beta, dt = float(sde.beta(t)), float(t - s)
    mean = x + (0.5 * beta * x + beta * score_fn(x, tv)) * dt
    return mean if last else mean + (beta * dt) ** 0.5 * _randn_like(x, generator)


def _ancestral_step(score_fn, sde, x, t, s, generator, last):
    """Exact Gaussian posterior q(x_s | x_t, x̂₀) with x̂₀ from Tweedie (DDPM ancestral sampling)."""
    tv = torch.full((x.shape[0],), float(t), device=x.device)
    x0 = sde.tweedie(x, score_fn(x, tv), tv)
    a_t, a_s = float(sde.alpha(t)), float(sde.alpha(s))
    var_t, var_s = 1.0 - a_t**2, 1.0 - a_s**2
    a_ts = a_t / a_s
    var_ts = var_t - a_ts**2 * var_s
    mean = (a_ts * var_s / var_t) * x + (a_s * var_ts / var_t) * x0
    if last:
        return x0
    return mean + (var_ts * var_s / var_t) ** 0.5 * _randn_like(x, generator)


STEPPERS = {"em": _em_step, "ancestral": _ancestral_step}


def sample(score_fn: ScoreFn, sde: VPSDE, x_T: torch.Tensor, steps: int, *, method: str = "em",
           generator: torch.Generator | None = None, project: Project | None = None,
           resample_jumps: int = 1, progress: Callable[[int], None] | None = None,
           grid: str | torch.Tensor = "linear") -> torch.Tensor:
    """Integrate the reverse SDE from x_T ~ N(0, I) at t = 1 down to t = ε and return x_ε.

    ``grid`` is a named time grid of :meth:`VPSDE.time_grid` or an explicit decreasing tensor of
    ``steps + 1`` times."""
    if method not in STEPPERS:
        raise ValueError(f"unknown sampler {method!r}; choose from {sorted(STEPPERS)}")
    if resample_jumps < 1:
        raise ValueError("resample_jumps must be ≥ 1")
    step = STEPPERS[method]
    if isinstance(grid, str):
        grid = sde.time_grid(steps, kind=grid)
    elif len(grid) != steps + 1:
        raise ValueError(f"an explicit time grid needs steps + 1 = {steps + 1} times, got {len(grid)}")
    x = x_T
    for i in range(steps):
        t, s = grid[i], grid[i + 1]
        last = i == steps - 1
        for j in range(resample_jumps):
            x_s = step(score_fn, sde, x, t, s, generator, last)
            if project is not None:
                x_s = project(x_s, s)
            if j < resample_jumps - 1 and not last:
                x = sde.renoise(x_s, float(s), float(t), _randn_like(x_s, generator))
            else:
                x = x_s
        if progress is not None:
            progress(1)
    return x.detach()
