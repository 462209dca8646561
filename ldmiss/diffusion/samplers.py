"""Reverse-time samplers for the VP-SDE (one function per solver step, k-diffusion style).

Every step function has one signature, ``step(score_fn, sde, x, t, s, generator, last) -> (x_s, x̂₀)``:
it moves x from time t down to s < t and also returns the denoised estimate x̂₀ = E[x₀ | x_t]
(Tweedie) it used, so a conditioner can work on x̂₀ without another network evaluation. The time
grid is explicit (a decreasing tensor of steps + 1 times) or named (:meth:`VPSDE.time_grid`).

:func:`sample` is the plain loop: a ``score_fn(x, t)`` (unconditional, or a guided score from
:mod:`ldmiss.diffusion.conditioners`), an optional ``project(x, t)`` applied after each step
(pixel replacement), RePaint ``resample_jumps``, a ``progress`` counter and a ``callback(i, x, x̂₀)``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import rng
from ..config import constrain
from ..errors import UsageError
from .sde import GRIDS, VPSDE

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Project = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, torch.Tensor, torch.Tensor], None]


def times(x: torch.Tensor, t) -> torch.Tensor:
    """A per-sample time vector (N,) for scalar time ``t``."""
    return torch.full((x.shape[0],), float(t), device=x.device)


def _em_step(score_fn, sde, x, t, s, generator, last):
    """Euler–Maruyama step of dx = [−½βx − β∇log p]dt + √β dw̄ from t down to s."""
    tv = times(x, t)
    beta, dt = float(sde.beta(t)), float(t - s)
    score = score_fn(x, tv)
    mean = x + (0.5 * beta * x + beta * score) * dt
    x0 = sde.tweedie(x, score, tv)
    return (mean if last else mean + (beta * dt) ** 0.5 * rng.randn_like(x, generator)), x0


def ancestral_moments(sde: VPSDE, x: torch.Tensor, x0: torch.Tensor, t, s) -> tuple[torch.Tensor, float]:
    """Mean and variance of the Gaussian q(x_s | x_t, x₀) (the DDPM posterior), for s < t."""
    a_t, a_s = float(sde.alpha(t)), float(sde.alpha(s))
    var_t, var_s = 1.0 - a_t**2, 1.0 - a_s**2
    a_ts = a_t / a_s
    var_ts = var_t - a_ts**2 * var_s
    mean = (a_ts * var_s / var_t) * x + (a_s * var_ts / var_t) * x0
    return mean, var_ts * var_s / var_t


def _ancestral_step(score_fn, sde, x, t, s, generator, last):
    """Exact Gaussian posterior q(x_s | x_t, x̂₀) with x̂₀ from Tweedie (DDPM ancestral sampling)."""
    x0 = sde.tweedie(x, score_fn(x, times(x, t)), times(x, t))
    if last:
        return x0, x0
    mean, var = ancestral_moments(sde, x, x0, t, s)
    return mean + var**0.5 * rng.randn_like(x, generator), x0


def _ode_step(score_fn, sde, x, t, s, generator, last):
    """Deterministic DDIM step (η = 0): an exact first-order solver of the probability-flow ODE in
    (x/α, σ/α) coordinates (Song et al. 2021, DDIM; Lu et al. 2022 DPM-Solver-1)."""
    tv = times(x, t)
    x0 = sde.tweedie(x, score_fn(x, tv), tv)
    if last:
        return x0, x0
    a_t, s_t = float(sde.alpha(t)), float(sde.sigma(t))
    a_s, s_s = float(sde.alpha(s)), float(sde.sigma(s))
    eps = (x - a_t * x0) / s_t
    return a_s * x0 + s_s * eps, x0


def _heun_step(score_fn, sde, x, t, s, generator, last):
    """EDM's deterministic second-order step (Karras et al. 2022, Algorithm 1 with S_churn = 0): Heun's
    method on the probability-flow ODE in EDM's coordinates y = x/α, σ_e = σ/α, where
    dy/dσ_e = (y − x̂₀(y))/σ_e. Two network evaluations per step; the last step returns x̂₀ (one)."""
    tv = times(x, t)
    x0 = sde.tweedie(x, score_fn(x, tv), tv)
    if last:
        return x0, x0
    a_t, a_s = float(sde.alpha(t)), float(sde.alpha(s))
    se_t, se_s = float(sde.sigma(t)) / a_t, float(sde.sigma(s)) / a_s
    y = x / a_t
    d1 = (y - x0) / se_t
    y_euler = y + (se_s - se_t) * d1
    sv = times(x, s)
    x_euler = a_s * y_euler
    x0_s = sde.tweedie(x_euler, score_fn(x_euler, sv), sv)
    d2 = (y_euler - x0_s) / se_s
    return a_s * (y + (se_s - se_t) * 0.5 * (d1 + d2)), x0


def _dpmpp_2m_step(score_fn, sde, x, t, s, generator, last, state):
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2): the exact solution of the
    probability-flow ODE's linear part in λ = log(α/σ) with the data prediction x̂₀ extrapolated
    linearly in λ from this step's and the previous step's — second order at one network evaluation
    per step. With h = λ_s − λ_t and r = h_prev / h:

        D = (1 + 1/(2r)) x̂₀(t) − 1/(2r) x̂₀(t_prev)   (D = x̂₀(t) on the first step)
        x_s = (σ_s/σ_t) x_t − α_s (e^{−h} − 1) D

    ``state`` (one dict per solve) carries the previous x̂₀ and h; the last step returns x̂₀."""
    tv = times(x, t)
    x0 = sde.tweedie(x, score_fn(x, tv), tv)
    if last:
        return x0, x0
    ts = torch.tensor([float(t), float(s)], dtype=torch.float64)
    lam_t, lam_s = (0.5 * sde.logsnr(ts)).tolist()
    h = lam_s - lam_t
    d = x0
    if "x0" in state:
        r = state["h"] / h
        d = (1 + 0.5 / r) * x0 - (0.5 / r) * state["x0"]
    state["x0"], state["h"] = x0, h
    a_s = float(sde.alpha(s))
    ratio = float(sde.sigma(s)) / float(sde.sigma(t))
    return ratio * x - a_s * math.expm1(-h) * d, x0


STEPPERS: dict[str, Callable] = {}
EVALS_PER_STEP: dict[str, int] = {}  # network evaluations of one step (but the last) of each sampler
MULTISTEP: set[str] = set()  # samplers whose steps read the previous steps' x̂₀ (a ``state`` dict per solve)


def register_sampler(name: str, step: Callable, evals_per_step: int = 1, multistep: bool = False) -> Callable:
    """Make ``step`` (the signature above) the sampler ``name``: selectable as ``sampler.method``,
    listed by the CLI and tested by the solver contract tests. A new solver is one function in its
    own module plus this one call; ``evals_per_step``: how often it calls ``score_fn`` per step;
    ``multistep``: the step takes a ``state`` dict (fresh for each solve) to remember earlier steps."""
    STEPPERS[name] = step
    EVALS_PER_STEP[name] = int(evals_per_step)
    if multistep:
        MULTISTEP.add(name)
    return step


def sampler_nfe(method: str, steps: int) -> int:
    """Network evaluations of a ``steps``-step solve (every sampler's last step evaluates once)."""
    return (steps - 1) * EVALS_PER_STEP[method] + 1


register_sampler("em", _em_step)
register_sampler("ancestral", _ancestral_step)
register_sampler("ode", _ode_step)
register_sampler("heun", _heun_step, evals_per_step=2)
register_sampler("dpmpp2m", _dpmpp_2m_step, multistep=True)


@dataclass
class SamplerConfig:
    # a registered sampler: "em" (Euler–Maruyama), "ancestral" (DDPM), "ode" (DDIM, η = 0), "heun" (EDM),
    # "dpmpp2m" (DPM-Solver++(2M), best on the "logsnr" grid)
    method: str = "em"
    steps: int = 100
    batch_size: int = 500
    grid: str = "linear"  # "linear" in t, "edm" (Karras et al.'s ρ = 7 grid) or "logsnr" (uniform λ; VPSDE.time_grid)


constrain("SamplerConfig", method=("choices", STEPPERS), grid=("choices", GRIDS), steps=("range", 1, None),
          batch_size=("range", 1, None))


def resolve_grid(sde: VPSDE, steps: int, grid: str | torch.Tensor = "linear") -> torch.Tensor:
    """A named grid of :meth:`VPSDE.time_grid`, or check an explicit decreasing one."""
    if isinstance(grid, str):
        return sde.time_grid(steps, kind=grid)
    if len(grid) != steps + 1:
        raise UsageError(f"an explicit time grid needs steps + 1 = {steps + 1} times, got {len(grid)}")
    return grid


def get_stepper(method: str):
    if method not in STEPPERS:
        raise UsageError(f"unknown sampler {method!r}; choose from {sorted(STEPPERS)}")
    return STEPPERS[method]


def sample(score_fn: ScoreFn, sde: VPSDE, x_T: torch.Tensor, steps: int, *, method: str = "em",
           generator: torch.Generator | None = None, project: Project | None = None,
           resample_jumps: int = 1, progress: Callable[[int], None] | None = None,
           grid: str | torch.Tensor = "linear", callback: Callback | None = None) -> torch.Tensor:
    """Integrate the reverse SDE (or ODE, ``method="ode"``) from x_T at t = 1 down to t = ε."""
    step = get_stepper(method)
    if resample_jumps < 1:
        raise UsageError("resample_jumps must be ≥ 1")
    grid = resolve_grid(sde, steps, grid)
    if method in MULTISTEP:
        if resample_jumps > 1:
            raise UsageError(f"sampler {method!r} is multistep: RePaint's resampling jumps back in time, which its "
                             "memory of earlier steps cannot follow; choose a one-step sampler (ancestral, ode, em, heun)")
        step = functools.partial(step, state={})
    x = x_T
    for i in range(steps):
        t, s = grid[i], grid[i + 1]
        last = i == steps - 1
        for j in range(1 if last else resample_jumps):  # the last step is never resampled
            x_s, x0 = step(score_fn, sde, x, t, s, generator, last)
            if project is not None:
                x_s = project(x_s, s)
            if j < resample_jumps - 1 and not last:
                x = sde.renoise(x_s, float(s), float(t), rng.randn_like(x_s, generator))
            else:
                x = x_s
        if callback is not None:
            callback(i, x, x0)
        if progress is not None:
            progress(1)
    return x.detach()
