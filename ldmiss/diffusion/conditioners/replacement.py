"""``replacement`` — pixel-space inpainting by replacement (Song et al. 2021, §5 "imputation";
RePaint, Lugmayr et al. 2022, for ``resample_jumps`` > 1).

After each reverse step the observed entries of x_s are overwritten by a forward-noised copy of the
observation, α_s x_obs + σ_s ε. Only for a diffusion space whose entries are pixels (``elementwise``):
a latent has no notion of missing dimensions (latent RePaint is ``repaint``). RePaint's resampling
renoises x_s back to t and repeats the step ``resample_jumps`` times (jump length 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import rng
from ...config import constrain
from ..samplers import sample, times
from ..sde import VPSDE
from .base import Observation, Prior, register_conditioner


@dataclass
class ReplacementConfig:
    steps: int = 0  # reverse steps; 0 = the method's imputation steps
    resample_jumps: int = 1  # RePaint resampling r (1 = none)


constrain("ReplacementConfig", steps=("range", 0, None), resample_jumps=("range", 1, None))


@dataclass
class Replacement:
    """``project(x, t)`` hook: observed entries of x_t ← α_t x_obs + σ_t ε (fresh noise)."""

    sde: VPSDE
    x_obs: torch.Tensor
    obs_mask: torch.Tensor
    generator: torch.Generator | None = None

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        noised = self.sde.marginal(self.x_obs, times(x, t), rng.randn_like(x, self.generator))
        return self.obs_mask * noised + (1.0 - self.obs_mask) * x


def jumps_nfe(steps: int, jumps: int) -> int:
    """Network evaluations of a solve with RePaint resampling: every step but the last repeats."""
    return (steps - 1) * jumps + 1


@register_conditioner("replacement", ReplacementConfig, needs=("elementwise",),
                      nfe=lambda cfg, steps: jumps_nfe(steps, cfg.resample_jumps),
                      steps_for_nfe=lambda cfg, nfe: max(1, int(round((nfe - 1) / cfg.resample_jumps)) + 1),
                      reference="Song et al. 2021 (score SDE), App. I.2; RePaint, Lugmayr et al. 2022", follows_sampler=True)
def run(prior: Prior, obs: Observation, generator, cfg: ReplacementConfig, steps: int, progress=None) -> torch.Tensor:
    project = Replacement(prior.sde, obs.encode(obs.x_obs), obs.mask, generator)
    return sample(prior.score, prior.sde, prior.noise(obs.x_obs.shape[0], generator), steps, method=prior.method,
                  generator=generator, project=project, resample_jumps=cfg.resample_jumps, progress=progress,
                  grid=prior.grid)
