"""Conditioning an unconditional diffusion model on observed pixels.

- :class:`SelfGuidance` (LDMiss §5): ∇log p_t(x_t | x_obs) ≈ s_u + w·g with
  g = −∇_{x_t}‖m⊙(x_obs − D(x̂₀(x_t)))‖², x̂₀ from Tweedie, D a decoder (identity in pixel space),
  and g rescaled per sample to ‖s_u‖ so guidance has equal strength at every step.
- :class:`Replacement`: after each step, observed pixels of x_t are overwritten by a forward-noised
  copy of the observation (pixel space only — latent space has no notion of missing dimensions).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .samplers import _randn_like
from .sde import VPSDE, _bcast


def _per_sample_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1)


@dataclass
class SelfGuidance:
    """A guided ``score_fn(x, t)`` for the samplers.

    ``decode`` maps the diffusion space to pixel space in [0, 1] (differentiably); ``x_obs`` and
    ``obs_mask`` live in pixel space. ``grad_through_score`` differentiates through the score network
    too (exact gradient of the Tweedie estimate); when false, s_u is treated as a constant.
    """

    score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    sde: VPSDE
    decode: Callable[[torch.Tensor], torch.Tensor]
    x_obs: torch.Tensor
    obs_mask: torch.Tensor
    weight: float = 1.0
    norm_match: bool = True
    grad_through_score: bool = True

    def guidance_term(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (s_u, g) at (x, t); g is already norm-matched if ``norm_match``."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            if self.grad_through_score:
                s_u = self.score_fn(x, t)
            else:
                with torch.no_grad():
                    s_u = self.score_fn(x, t)
            x0_hat = self.sde.tweedie(x, s_u, t)
            err = self.obs_mask * (self.x_obs - self.decode(x0_hat))
            loss = (err**2).sum()
            (grad,) = torch.autograd.grad(loss, x)
        g, s_u = -grad.detach(), s_u.detach()
        if self.norm_match:
            g_norm = _per_sample_norm(g)
            scale = torch.where(g_norm > 0, _per_sample_norm(s_u) / g_norm.clamp_min(1e-30), torch.zeros_like(g_norm))
            g = g * _bcast(scale, g)
        return s_u, g

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s_u, g = self.guidance_term(x, t)
        return s_u + self.weight * g


@dataclass
class Replacement:
    """``project(x, t)`` hook: observed entries of x_t ← α_t x_obs + σ_t ε (fresh noise)."""

    sde: VPSDE
    x_obs: torch.Tensor
    obs_mask: torch.Tensor
    generator: torch.Generator | None = None

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tv = torch.full((x.shape[0],), float(t), device=x.device)
        noised = self.sde.marginal(self.x_obs, tv, _randn_like(x, self.generator))
        return self.obs_mask * noised + (1.0 - self.obs_mask) * x
