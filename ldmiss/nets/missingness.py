"""Models of the missingness p(m | x), for data missing *not* at random (not-MIWAE, LDMiss's option).

Every other part of LDMiss assumes the mask carries no information about the pixels it hides. Under
self-masking (brighter pixels go missing more) that is false, and a model that ignores it learns the
observed pixels' law (dark) as if it were the data's. Adding log p(m | x) to the training bound lets
the model learn which values tend to be hidden (Ipsen, Mattei & Frellsen, "not-MIWAE", ICLR 2021).

**Self-masking logistic** (the paper's model): each pixel's chance of being observed depends only
on its own value,

    p(m_d = 1 | x) = σ(−W_d (x_d − b_d))          (m = 1: observed),

with W, b one per pixel (or one pair shared by all pixels). W = 0 at the start: MCAR.

**The missing pixels' values are integrated out exactly**, not sampled: since the model and the
decoder both factorise over pixels, p(m | x_o, z) = Π_{d observed} σ(−W_d(x_d − b_d)) ·
Π_{d missing} E_{x_d ~ p(x_d | z)} σ(W_d(x_d − b_d)), and each expectation has a closed form — for a
Bernoulli decoder (x_d ∈ {0, 1}, P(1) = the decoder mean μ_d) it is μ_d σ(W_d(1 − b_d)) +
(1 − μ_d) σ(−W_d b_d), exact; for a Gaussian decoder the probit approximation
E σ(a) ≈ σ(E a / √(1 + π Var a / 8)); a continuous-Bernoulli decoder is treated as the Bernoulli of
the same mean. The paper instead draws one x_m ~ p(x_m | z) per importance sample; for a Bernoulli
decoder that draw carries no gradient to the decoder (the authors' code samples without one), which
leaves the decoder blind to the missingness term. Integrating gives the gradient and a tighter bound.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UsageError

MISSINGNESS = ("none", "selfmask", "selfmask_known")


class SelfMasking(nn.Module):
    """p(m | x) = Π_d Bernoulli(m_d; σ(−W_d (x_d − b_d))). ``known_sign``: W = softplus(w) > 0 (brighter
    pixels go missing more, the paper's variant for a known direction); ``shared``: one W, b for all."""

    def __init__(self, image_shape, shared: bool = False, known_sign: bool = False):
        super().__init__()
        shape = (1, 1, 1) if shared else tuple(image_shape)
        self.w = nn.Parameter(torch.zeros(shape))
        self.b = nn.Parameter(torch.zeros(shape))
        self.known_sign = known_sign

    def weight(self) -> torch.Tensor:
        return F.softplus(self.w) if self.known_sign else self.w

    def observed_logit(self, x: torch.Tensor) -> torch.Tensor:
        """logit p(m_d = 1 | x_d), per pixel."""
        return -self.weight() * (x - self.b)

    def log_prob(self, obs_mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(m | x) per image (summed over pixels) for complete images ``x`` (…×C×H×W; broadcasts
        against ``obs_mask``)."""
        logits = self.observed_logit(x)
        return -F.binary_cross_entropy_with_logits(logits, obs_mask.expand_as(logits), reduction="none").flatten(-3).sum(-1)

    def log_prob_expected(self, obs_mask: torch.Tensor, x_obs: torch.Tensor, mean: torch.Tensor,
                          likelihood) -> torch.Tensor:
        """log p(m | x_o, z) per image: observed pixels at their values ``x_obs``, missing pixels'
        values integrated over the decoder's p(x_d | z) (its per-pixel ``mean``, and for a Gaussian
        its scale) — see the module docstring. Shapes broadcast (K×N×C×H×W means against N×C×H×W)."""
        w = self.weight()
        obs_term = F.logsigmoid(-w * (x_obs - self.b))
        if likelihood.kind == "gaussian":
            scale = torch.exp(likelihood.log_scale.clamp(math.log(1e-3), math.log(1.0)))
            a_mean, a_var = w * (mean - self.b), (w * scale) ** 2
            mis_term = F.logsigmoid(a_mean / torch.sqrt(1.0 + math.pi * a_var / 8.0))
        else:  # x_d ∈ {0, 1} with P(1) = mean: log(μ σ(W(1 − b)) + (1 − μ) σ(−W b))
            mu = mean.clamp(1e-6, 1 - 1e-6)
            mis_term = torch.logaddexp(torch.log(mu) + F.logsigmoid(w * (1.0 - self.b)),
                                       torch.log1p(-mu) + F.logsigmoid(-w * self.b))
        per_pixel = obs_mask * obs_term + (1.0 - obs_mask) * mis_term
        return per_pixel.flatten(-3).sum(-1)


def build_missingness(kind: str, image_shape, shared: bool = False) -> SelfMasking | None:
    """The missingness model named by a config (``"none"``: MAR assumed, no model)."""
    if kind not in MISSINGNESS:
        raise UsageError(f"unknown missingness model {kind!r}; choose from {list(MISSINGNESS)}")
    if kind == "none":
        return None
    return SelfMasking(image_shape, shared=shared, known_sign=kind == "selfmask_known")
