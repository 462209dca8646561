"""Denoising score matching, optionally restricted to observed dimensions (MissDiff).

With λ_t = σ_t², the DSM objective λ_t‖s_θ − ∇log p₀ₜ‖² equals ‖ε_θ − ε‖², so networks predict noise
(or v, see :mod:`.parameterization`). The masked version Σ m⊙(target − out)² / Σ m only scores
observed dimensions: a missing pixel's (zero-imputed) value can still enter x_t, but the network is
never asked to reproduce it. How t is drawn (``time_dist``) is the loss's weighting over noise levels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import rng
from ..config import constrain
from .parameterization import PREDICTIONS, network_input, target
from .sde import TIME_DISTS, VPSDE


@dataclass
class LossConfig:
    """What the ε-network predicts and how training times are drawn (see diffusion/parameterization.py)."""
    prediction: str = "eps"  # "eps", "v" or "edm" (EDM's preconditioning)
    sigma_data: float = 0.5  # EDM's data scale σ_d (``edm`` only; 0.5 for data in [−1, 1])
    time_dist: str = "uniform"  # "uniform" t ~ U(ε, 1) or "logsnr" λ ~ N(logsnr_mean, logsnr_std²)
    logsnr_mean: float = 2.4
    logsnr_std: float = 2.4


constrain("LossConfig", prediction=("choices", PREDICTIONS), time_dist=("choices", TIME_DISTS),
          logsnr_std=("range", 0.0, None), sigma_data=("range", 1e-3, None))

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def dsm_loss(net: EpsFn, sde: VPSDE, x0: torch.Tensor, obs_mask: torch.Tensor | None = None,
             generator: torch.Generator | None = None, *, prediction: str = "eps", time_dist: str = "uniform",
             logsnr_mean: float = 2.4, logsnr_std: float = 2.4, sigma_data: float = 0.5) -> torch.Tensor:
    """Monte-Carlo DSM loss on a batch; ``obs_mask`` (1 = observed) restricts it to observed dims."""
    t = sde.sample_time(x0.shape[0], generator, device=x0.device, dist=time_dist,
                        logsnr_mean=logsnr_mean, logsnr_std=logsnr_std)
    noise = rng.randn_like(x0, generator)
    x_t = sde.marginal(x0, t, noise)
    out = net(network_input(prediction, sde, x_t, t, sigma_data), t)
    sq = (out - target(prediction, sde, x0, noise, t, sigma_data)) ** 2
    if obs_mask is None:
        return sq.mean()
    return (obs_mask * sq).sum() / obs_mask.sum().clamp_min(1.0)
