"""The variance-preserving SDE (Song et al. 2021) in closed form.

Forward: dx = −½β(t)x dt + √β(t) dw with β(t) = β_min + t(β_max − β_min), t ∈ [ε, 1].
Marginal: x_t = α_t x₀ + σ_t ε with α_t = exp(−½∫₀ᵗβ), σ_t² = 1 − α_t².
This module knows nothing about networks: it maps times to coefficients and back.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample vector (N,) to broadcast against an N×… tensor."""
    return v.reshape(-1, *([1] * (like.ndim - 1)))


@dataclass(frozen=True)
class VPSDE:
    beta_min: float = 0.1
    beta_max: float = 20.0
    eps: float = 1e-3

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """log α_t = −½∫₀ᵗβ(s)ds = −¼t²(β_max − β_min) − ½tβ_min."""
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(-torch.expm1(2.0 * self.log_alpha(t)))

    def marginal(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = α_t x₀ + σ_t ε for per-sample times t (shape N)."""
        return _bcast(self.alpha(t), x0) * x0 + _bcast(self.sigma(t), x0) * noise

    def sample_time(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """t ~ U(ε, 1), the training-time distribution."""
        u = torch.rand(n, generator=generator, device="cpu" if generator is not None else device)
        return (self.eps + (1.0 - self.eps) * u).to(device)

    def time_grid(self, steps: int, device=None) -> torch.Tensor:
        """Decreasing grid 1 = t₀ > … > t_steps = ε for reverse-time sampling."""
        if steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {steps}")
        return torch.linspace(1.0, self.eps, steps + 1, device=device)

    def score_from_eps(self, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """s = −ε/σ_t."""
        return -eps / _bcast(self.sigma(t), eps)

    def eps_from_score(self, score: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -score * _bcast(self.sigma(t), score)

    def tweedie(self, x_t: torch.Tensor, score: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """E[x₀ | x_t] = (x_t + σ_t² ∇log p_t(x_t)) / α_t."""
        a, s = _bcast(self.alpha(t), x_t), _bcast(self.sigma(t), x_t)
        return (x_t + s**2 * score) / a

    def renoise(self, x_s: torch.Tensor, s: float, t: float, noise: torch.Tensor) -> torch.Tensor:
        """Sample x_t | x_s for t > s (forward transition; used by RePaint resampling)."""
        ts, tt = torch.tensor(s), torch.tensor(t)
        a_ts = torch.exp(self.log_alpha(tt) - self.log_alpha(ts))
        var = (1.0 - a_ts**2).clamp_min(0.0)
        return a_ts * x_s + torch.sqrt(var) * noise
