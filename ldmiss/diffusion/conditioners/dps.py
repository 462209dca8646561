"""``dps`` — Diffusion Posterior Sampling (Chung et al., ICLR 2023, Algorithm 1).

Each step takes the prior's plain reverse step x' from x_t (its x̂₀ from Tweedie), then corrects it
by the gradient of the observed-pixel residual's norm through the denoiser and the decoder:
x_s = x' − ζ ∇_{x_t} ‖m ⊙ (x_obs − D(x̂₀(x_t)))‖. The gradient of the norm (not its square) is
the paper's step ζ_i = ζ'/‖y − A(x̂₀)‖ as the authors' code implements it; unlike self-guidance
there is no matching to the score's norm. ζ = 0.5 is the official code's inpainting setting; the
residual is taken per image (the official code takes one norm over the whole batch).
One network evaluation and one backward pass per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...config import constrain
from .base import Observation, Prior, per_sample_norm, prior_step, register_conditioner, time_vector


@dataclass
class DPSConfig:
    steps: int = 0  # reverse steps; 0 = the method's imputation steps
    step_size: float = 0.5  # ζ


constrain("DPSConfig", steps=("range", 0, None), step_size=("range", 0.0, None))


@register_conditioner("dps", DPSConfig, nfe=lambda cfg, steps: steps,
                      steps_for_nfe=lambda cfg, nfe: max(1, int(round(nfe))),
                      reference="Chung et al. 2023, Diffusion Posterior Sampling, Algorithm 1",
                      needs=("one_eval_sampler",))
def run(prior: Prior, obs: Observation, generator, cfg: DPSConfig, steps: int, progress=None) -> torch.Tensor:
    grid = prior.time_grid(steps)
    x = prior.noise(obs.x_obs.shape[0], generator)
    for i in range(steps):
        t, s, last = grid[i], grid[i + 1], i == steps - 1
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            score, x0 = prior.denoise(x, time_vector(x, t))
            (grad,) = torch.autograd.grad(per_sample_norm(obs.residual(x0)).sum(), x)
        prior.count_backward(x.shape[0])
        x_s, _ = prior_step(prior, x.detach(), t, s, score.detach(), generator, last)
        x = x_s - cfg.step_size * grad
        if progress is not None:
            progress(1)
    return x.detach()
