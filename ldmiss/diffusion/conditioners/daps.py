"""``daps`` — Decoupled Annealing Posterior Sampling (Zhang et al., CVPR 2025, arXiv 2407.01521, Algorithm 1).

On a decreasing annealing grid t_0 = 1 > … > t_N = ε, at each level:

1. x̂₀ = a short probability-flow ODE solve from x_{t_i} down to ε (``ode_steps`` DDIM steps);
2. Langevin dynamics on x₀ for p(x₀ | x_{t_i}, y) ∝ N(x₀; x̂₀, r_{t_i}² I) · N(y; D(x₀), σ_y² I),
   started at x̂₀, with r_t = σ_t/α_t (the paper's r_t = σ_t for a VE process, in VP coordinates)
   and a step size annealed from η₀ to δ·η₀ with t (the paper's schedule);
3. re-noise: x_{t_{i+1}} = α x₀ + σ ε with fresh noise — decoupled from the previous x_t, which
   lets the sampler fix large errors that guidance along one trajectory cannot.

Paper defaults (pixel FFHQ): 5 ODE steps, 100 Langevin steps, η₀ = 1e-4, δ = 0.01, σ_y = 0.05.
``steps`` counts annealing levels; network evaluations per image = steps × ode_steps (the Langevin
steps only differentiate the decoder, which for a latent prior is not free: see the wall time).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import rng
from ...config import constrain
from ..samplers import _ode_step
from .base import Observation, Prior, register_conditioner, time_vector


@dataclass
class DAPSConfig:
    steps: int = 0  # annealing levels; 0 = the method's imputation steps
    ode_steps: int = 5
    langevin_steps: int = 100
    langevin_lr: float = 1e-4  # η₀
    lr_min_ratio: float = 0.01  # δ
    sigma_y: float = 0.05  # observation noise std in pixel units


constrain("DAPSConfig", steps=("range", 0, None), ode_steps=("range", 1, None), langevin_steps=("range", 0, None),
          langevin_lr=("range", 0.0, None), lr_min_ratio=("range", 0.0, 1.0), sigma_y=("range", 1e-6, None))


def ode_denoise(prior: Prior, x: torch.Tensor, t: float, steps: int) -> torch.Tensor:
    """x̂₀ by ``steps`` DDIM steps of the probability-flow ODE from time t to ε (steps network evaluations)."""
    grid = torch.linspace(float(t), prior.sde.eps, steps + 1)
    for k in range(steps):
        x, x0 = _ode_step(prior.score, prior.sde, x, grid[k], grid[k + 1], None, k == steps - 1)
    return x0


def langevin(obs: Observation, x0_hat: torch.Tensor, r: float, cfg: DAPSConfig, lr: float, generator) -> torch.Tensor:
    """``cfg.langevin_steps`` unadjusted Langevin steps on −log N(x₀; x̂₀, r²I) − log N(y; D(x₀), σ_y²I)."""
    x0 = x0_hat.clone()
    for _ in range(cfg.langevin_steps):
        with torch.enable_grad():
            x0 = x0.detach().requires_grad_(True)
            energy = (x0 - x0_hat).pow(2).sum() / (2 * r**2) + obs.sq_error(x0).sum() / (2 * cfg.sigma_y**2)
            (grad,) = torch.autograd.grad(energy, x0)
        x0 = x0.detach() - lr * grad + (2 * lr) ** 0.5 * rng.randn_like(x0, generator)
    return x0.detach()


@register_conditioner("daps", DAPSConfig, nfe=lambda cfg, steps: steps * cfg.ode_steps,
                      steps_for_nfe=lambda cfg, nfe: max(1, int(round(nfe / cfg.ode_steps))),
                      reference="Zhang et al. 2025, Decoupled Annealing Posterior Sampling, Algorithm 1")
def run(prior: Prior, obs: Observation, generator, cfg: DAPSConfig, steps: int, progress=None) -> torch.Tensor:
    sde = prior.sde
    grid = prior.time_grid(steps)
    x = prior.noise(obs.x_obs.shape[0], generator)
    for i in range(steps):
        t, s = float(grid[i]), float(grid[i + 1])
        x0_hat = ode_denoise(prior, x, t, cfg.ode_steps)
        r = float(sde.sigma(torch.tensor(t)) / sde.alpha(torch.tensor(t)))
        lr = cfg.langevin_lr * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * t)
        x0 = langevin(obs, x0_hat, r, cfg, lr, generator)
        x = x0 if i == steps - 1 else sde.marginal(x0, time_vector(x0, s), rng.randn_like(x0, generator))
        if progress is not None:
            progress(1)
    return x
