"""Per-pixel decoder likelihoods p(x | z): what the decoder's output means, and its log-density.

Every likelihood factorises over pixels, so the β-VAE's reconstruction term sums only over observed
pixels and missing ones drop out. Each maps the decoder's raw output ``out`` (N×C×H×W) to
``log_prob(out, x)`` per pixel and to ``mean(out)``, the image in [0, 1] the decoder stands for (what
sampling, imputation and guidance use):

- ``bernoulli``: logits; mean sigmoid(out). Suits near-binary data (MNIST) and is the default; for
  grey values it is the usual "binary cross-entropy" surrogate (not a normalised density on [0, 1]).
- ``cbernoulli``: the continuous Bernoulli (Loaiza-Ganem & Cunningham, NeurIPS 2019), the Bernoulli
  *normalised* on [0, 1]: log p = x log λ + (1−x) log(1−λ) + log C(λ), λ = sigmoid(out),
  C(λ) = 2 artanh(1−2λ)/(1−2λ); its mean is λ/(2λ−1) + 1/(2 artanh(1−2λ)), not λ.
- ``gaussian``: mean sigmoid(out), one learned log-scale per channel (the decoder owns it as a
  parameter); suits natural (colour) images.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UsageError

LIKELIHOODS = ("bernoulli", "cbernoulli", "gaussian")
_HALF_BAND = 1e-3  # |λ − ½| below this: the Taylor expansions of C(λ) and the mean (their limits are 2 and ½)


def _cb_log_norm(lam: torch.Tensor) -> torch.Tensor:
    """log C(λ), stable at λ → ½ (Taylor: log 2 + (4/3)(λ−½)²·… ≈ log 2 + 4/3·d²)."""
    d = lam - 0.5
    far = d.abs() >= _HALF_BAND
    safe = torch.where(far, lam, torch.full_like(lam, 0.25))
    exact = torch.log((2.0 * torch.atanh(1.0 - 2.0 * safe)).abs()) - torch.log((1.0 - 2.0 * safe).abs())
    taylor = math.log(2.0) + (4.0 / 3.0) * d**2
    return torch.where(far, exact, taylor)


def cb_mean(lam: torch.Tensor) -> torch.Tensor:
    """Mean of the continuous Bernoulli with parameter λ (½ + (λ−½)/3 near ½)."""
    d = lam - 0.5
    far = d.abs() >= _HALF_BAND
    safe = torch.where(far, lam, torch.full_like(lam, 0.25))
    exact = safe / (2.0 * safe - 1.0) + 1.0 / (2.0 * torch.atanh(1.0 - 2.0 * safe))
    return torch.where(far, exact, 0.5 + d / 3.0)


class Likelihood(nn.Module):
    def __init__(self, kind: str = "bernoulli", channels: int = 1):
        super().__init__()
        if kind not in LIKELIHOODS:
            raise UsageError(f"unknown decoder likelihood {kind!r}; choose from {list(LIKELIHOODS)}")
        self.kind = kind
        if kind == "gaussian":
            self.log_scale = nn.Parameter(torch.full((1, channels, 1, 1), math.log(0.1)))

    def log_prob(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | out) per pixel (same shape as x)."""
        if self.kind == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none")
        if self.kind == "cbernoulli":
            lam = torch.sigmoid(out).clamp(1e-6, 1 - 1e-6)
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none") + _cb_log_norm(lam)
        log_s = self.log_scale.clamp(math.log(1e-3), math.log(1.0))
        z = (x - torch.sigmoid(out)) * torch.exp(-log_s)
        return -0.5 * z**2 - log_s - 0.5 * math.log(2 * math.pi)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        if self.kind == "cbernoulli":
            return cb_mean(torch.sigmoid(out).clamp(1e-6, 1 - 1e-6))
        return torch.sigmoid(out)
