"""``guidance`` — LDMiss self-guidance (docs/method.md §5).

∇log p_t(x_t | x_obs) ≈ s_u + w·g with g = −∇_{x_t}‖m ⊙ (x_obs − D(x̂₀(x_t)))‖², x̂₀ from Tweedie,
D the decoder (the affine map to pixels for a pixel prior), and g rescaled per sample to ‖s_u‖ so
the guidance has equal strength at every step. The guided score then drives the prior's own
sampler (``Prior.method``) on its time grid. One network evaluation and one backward pass per step.

With a model of the missingness (data missing not at random, nets/missingness.py) the data term
becomes ‖m ⊙ (x_obs − D(x̂₀))‖² − λ_m log p(m | x_o, D(x̂₀)): the squared error is −2σ_y² log
N(x_obs; D(x̂₀), σ_y²) up to a constant, so λ_m = 2σ_y² weighs the two log-likelihoods alike
(``missingness_weight``; 0.02 is σ_y = 0.1).

``start_time`` t₀ < 1 starts the solve from the encoder's latent of the incomplete image noised to t₀
(SDEdit's start, Meng et al., ICLR 2022) instead of from pure noise at t = 1: the steps then cover
only [ε, t₀], where the guess is refined rather than drawn from scratch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ...config import constrain
from ..samplers import sample, sampler_nfe
from ..sde import VPSDE, _bcast
from .base import Observation, Prior, per_sample_norm, register_conditioner


@dataclass
class GuidanceConfig:
    weight: float = 1.0
    norm_match: bool = True
    grad_through_score: bool = True
    steps: int = 0  # reverse steps; 0 = the prior sampler's (each guided step costs a backward pass)
    # λ_m: the weight of −log p(m | x) beside the squared error, when the model has a missingness model
    missingness_weight: float = 0.02
    # t₀ of the solve: 1 starts from pure noise (the poster's); t₀ < 1 starts from the encoder's guess
    # for the incomplete image noised to t₀ (SDEdit's start, Meng et al. 2022), its grid from t₀ down —
    # the same number of steps then covers less of the path (where the model has that encoder)
    start_time: float = 1.0


constrain("GuidanceConfig", weight=("range", 0.0, None), steps=("range", 0, None),
          missingness_weight=("range", 0.0, None), start_time=("range", 1e-3, 1.0))


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
    # per-sample log p(m | x_o, x_m) of decoded pixels (Observation.log_missingness) and its weight λ_m
    log_missingness: Callable[[torch.Tensor], torch.Tensor] | None = None
    missingness_weight: float = 0.0

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
            pixels = self.decode(x0_hat)
            loss = (self.obs_mask * (self.x_obs - pixels)).pow(2).sum()
            if self.log_missingness is not None and self.missingness_weight > 0:
                loss = loss - self.missingness_weight * self.log_missingness(pixels).sum()
            (grad,) = torch.autograd.grad(loss, x)
        g, s_u = -grad.detach(), s_u.detach()
        if self.norm_match:
            g_norm = per_sample_norm(g)
            scale = torch.where(g_norm > 0, per_sample_norm(s_u) / g_norm.clamp_min(1e-30), torch.zeros_like(g_norm))
            g = g * _bcast(scale, g)
        return s_u, g

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s_u, g = self.guidance_term(x, t)
        return s_u + self.weight * g


def start_point(prior: Prior, obs: Observation, start_time: float, steps: int, generator):
    """(x at the first time, time grid): pure noise on the prior's grid from t = 1, or — ``start_time``
    t₀ < 1 — the encoder's latent of the incomplete image noised to t₀, on the prior's kind of grid
    from t₀. A diffusion space without an encoder for incomplete images cannot start late."""
    n = obs.x_obs.shape[0]
    if start_time >= 1.0:
        return prior.noise(n, generator), prior.grid
    if obs.encode_observed is None:
        from ...errors import UsageError
        raise UsageError("guidance.start_time < 1 starts from an encoder's guess for the incomplete image; this "
                         "model has no such encoder (a pixel-space prior): keep start_time = 1")
    grid = prior.sde.time_grid(steps, prior.device, kind=prior.grid, start=start_time)
    guess = obs.encode_observed(obs.x_obs, obs.mask)
    t0 = torch.full((n,), float(grid[0]), device=guess.device)
    return prior.sde.marginal(guess, t0, prior.noise(n, generator)), grid


@register_conditioner("guidance", GuidanceConfig, nfe=lambda cfg, steps: steps,
                      steps_for_nfe=lambda cfg, nfe: max(1, int(round(nfe))),
                      reference="LDMiss self-guidance (docs/method.md §5)", follows_sampler=True)
def run(prior: Prior, obs: Observation, generator, cfg: GuidanceConfig, steps: int, progress=None) -> torch.Tensor:
    guided = SelfGuidance(prior.score, prior.sde, obs.decode, obs.x_obs, obs.mask, cfg.weight, cfg.norm_match,
                          cfg.grad_through_score, obs.log_missingness if obs.missingness is not None else None,
                          cfg.missingness_weight)
    n = obs.x_obs.shape[0]
    x_start, grid = start_point(prior, obs, cfg.start_time, steps, generator)
    x = sample(guided, prior.sde, x_start, steps, method=prior.method, generator=generator, progress=progress,
               grid=grid)
    if cfg.grad_through_score:
        prior.count_backward(n * sampler_nfe(prior.method, steps))
    return x
