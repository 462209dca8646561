"""``pigdm`` — covariance-aware guidance in the spirit of ΠGDM (Song et al., ICLR 2023) and MMPS
(Rozet et al., NeurIPS 2024, "Learning diffusion priors from observations by expectation maximization").

The likelihood of the observed pixels given x_t is approximated by a Gaussian around the Tweedie
estimate, p(y | x_t) ≈ N(y; D(x̂₀), σ_y² I + A V Aᵀ), with

- V = Cov[x₀ | x_t] = (σ_t²/α_t) ∂x̂₀/∂x_t, the second-order Tweedie formula (MMPS eq. 8), applied
  as a vector–Jacobian product through the denoiser (no isotropic r_t² as in ΠGDM);
- A = M ∂D/∂x₀, the decoder linearised at x̂₀ (the identity's affine map for a pixel prior) and
  restricted to observed pixels by the mask M.

The guidance ∇_{x_t} log p(y | x_t) = (∂x̂₀/∂x_t)ᵀ Aᵀ Σ⁻¹ (y − D(x̂₀)) treats Σ as constant, as both
papers do, and solves Σ v = r with ``cg_steps`` conjugate-gradient iterations in pixel space (MMPS
uses 1–3; enough iterations make the solve exact). The guided score drives the prior's own
sampler. Per step: one network evaluation and ``cg_steps + 1`` backward passes through the denoiser
(plus decoder products). When the prior is Gaussian and D linear, p(y | x_t) is exactly this
Gaussian, so with an exact solve the sampler draws from the exact posterior (the tests check it).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...config import constrain
from ..samplers import sample
from .base import Observation, Prior, bcast, per_sample_dot, register_conditioner


@dataclass
class PiGDMConfig:
    steps: int = 0  # reverse steps; 0 = the method's imputation steps
    sigma_y: float = 0.05  # std of the observation noise, in pixel units (the observations are exact; it regularises Σ)
    cg_steps: int = 1  # conjugate-gradient iterations for Σ⁻¹r
    weight: float = 1.0  # scale of the likelihood term (1 = the approximation as derived)


constrain("PiGDMConfig", steps=("range", 0, None), sigma_y=("range", 1e-6, None), cg_steps=("range", 1, None),
          weight=("range", 0.0, None))


def conjugate_gradient(matvec, b: torch.Tensor, iterations: int) -> torch.Tensor:
    """Per-sample CG for the SPD systems A_i v_i = b_i (batch along dim 0), from v = 0; a sample whose
    search direction has no positive curvature keeps its current iterate."""
    v = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rs = per_sample_dot(r, r)
    for _ in range(iterations):
        ap = matvec(p)
        curvature = per_sample_dot(p, ap)  # ≤ 0 where a learned Jacobian is not positive definite: stop there
        alpha = torch.where(curvature > 0, rs / curvature.clamp_min(1e-30), torch.zeros_like(rs))
        v = v + bcast(alpha, p) * p
        r = r - bcast(alpha, ap) * ap
        rs_new = per_sample_dot(r, r)
        p = r + bcast(rs_new / rs.clamp_min(1e-30), p) * p
        rs = rs_new
    return v


class CovarianceGuidedScore:
    """score_fn(x, t) = s_u + w ∇_{x_t} log N(y; D(x̂₀), σ_y² I + A V Aᵀ)."""

    def __init__(self, prior: Prior, obs: Observation, cfg: PiGDMConfig):
        self.prior, self.obs, self.cfg = prior, obs, cfg

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        prior, obs, cfg, m = self.prior, self.obs, self.cfg, self.obs.mask
        sde = prior.sde
        cov_scale = bcast(sde.sigma(t) ** 2 / sde.alpha(t), x)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            score, x0 = prior.denoise(x, t)
            x0_leaf = x0.detach().requires_grad_(True)
            pixels = obs.decode(x0_leaf)
            residual = (m * (obs.x_obs - pixels)).detach()

            def decoder_t(u):  # Dᵀ u: pixel → diffusion space
                return torch.autograd.grad(pixels, x0_leaf, u, retain_graph=True)[0]

            def covariance(w):  # V w = (σ²/α) (∂x̂₀/∂x_t)ᵀ w (the Jacobian of a score model is symmetric)
                return cov_scale * torch.autograd.grad(x0, x, w, retain_graph=True)[0]

            def decoder(q):  # D q: diffusion → pixel space (forward-mode product)
                return torch.func.jvp(obs.decode, (x0.detach(),), (q,))[1]

            def sigma_matvec(u):
                return cfg.sigma_y**2 * u + m * decoder(covariance(decoder_t(m * u)))

            v = conjugate_gradient(sigma_matvec, residual, cfg.cg_steps)
            (grad,) = torch.autograd.grad(x0, x, decoder_t(m * v))
        prior.count_backward((cfg.cg_steps + 1) * x.shape[0])
        return score.detach() + cfg.weight * grad.detach()


@register_conditioner("pigdm", PiGDMConfig, nfe=lambda cfg, steps: steps,
                      steps_for_nfe=lambda cfg, nfe: max(1, int(round(nfe))),
                      reference="Song et al. 2023 (ΠGDM); Rozet et al. 2024 (MMPS), eqs. 8–10", follows_sampler=True)
def run(prior: Prior, obs: Observation, generator, cfg: PiGDMConfig, steps: int, progress=None) -> torch.Tensor:
    guided = CovarianceGuidedScore(prior, obs, cfg)
    return sample(guided, prior.sde, prior.noise(obs.x_obs.shape[0], generator), steps, method=prior.method,
                  generator=generator, progress=progress, grid=prior.grid)
