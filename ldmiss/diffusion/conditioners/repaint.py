"""``repaint`` — RePaint-style inpainting for any prior, latent included (Lugmayr et al., CVPR 2022).

A latent has no missing dimensions to overwrite, so the observation enters through pixel space:
after each reverse step, decode the step's x̂₀, paste the observed pixels over it, re-encode the
pasted image (``Observation.encode``), and re-noise it to the step's time with fresh noise,
x_s = α_s E(paste(D(x̂₀))) + σ_s ε. RePaint's resampling renoises x_s back to t and repeats the step
``resample_jumps`` times (jump length 1; the paper uses r = 10 at 250 steps, which at equal network
evaluations means 10× fewer steps). For pixel priors, ``replacement`` is the classic variant that
keeps the chain's own noise on missing pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import rng
from ...config import constrain
from .base import Observation, Prior, register_conditioner, time_vector
from .replacement import jumps_nfe


@dataclass
class RepaintConfig:
    steps: int = 0  # reverse steps; 0 = the method's imputation steps
    resample_jumps: int = 1  # r (1 = no resampling)


constrain("RepaintConfig", steps=("range", 0, None), resample_jumps=("range", 1, None))


def project(prior: Prior, obs: Observation, x0: torch.Tensor, s, generator) -> torch.Tensor:
    """α_s E(paste(D(x̂₀))) + σ_s ε."""
    z = obs.encode(obs.paste(obs.decode(x0)))
    return prior.sde.marginal(z, time_vector(z, s), rng.randn_like(z, generator))


@register_conditioner("repaint", RepaintConfig, nfe=lambda cfg, steps: jumps_nfe(steps, cfg.resample_jumps),
                      steps_for_nfe=lambda cfg, nfe: max(1, int(round((nfe - 1) / cfg.resample_jumps)) + 1),
                      reference="Lugmayr et al. 2022, RePaint, Algorithm 1 (through the decoder)")
def run(prior: Prior, obs: Observation, generator, cfg: RepaintConfig, steps: int, progress=None) -> torch.Tensor:
    sde, grid = prior.sde, prior.time_grid(steps)
    x = prior.noise(obs.x_obs.shape[0], generator)
    for i in range(steps):
        t, s, last = grid[i], grid[i + 1], i == steps - 1
        for j in range(1 if last else cfg.resample_jumps):
            _, x0 = prior.denoise(x, time_vector(x, t))  # x̂₀ only: the projection re-noises
            x_s = obs.encode(obs.paste(obs.decode(x0))) if last else project(prior, obs, x0, s, generator)
            x = x_s if (last or j == cfg.resample_jumps - 1) else sde.renoise(x_s, float(s), float(t),
                                                                             rng.randn_like(x_s, generator))
        if progress is not None:
            progress(1)
    return x
