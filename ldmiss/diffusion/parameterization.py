"""What the network predicts, and how its output becomes ε (the samplers' currency).

For the VP-SDE x_t = α_t x₀ + σ_t ε with α_t² + σ_t² = 1:

- ``eps``: the network predicts ε (Ho et al. 2020); the DSM loss with λ_t = σ_t² is ‖ε_θ − ε‖².
- ``v``: the network predicts v = α_t ε − σ_t x₀ (Salimans & Ho 2022); then ε = σ_t x_t + α_t v and
  x̂₀ = α_t x_t − σ_t v. Why: at high noise an ε-network must output almost exactly x_t/σ_t and
  x̂₀ = (x_t − σ_t ε̂)/α_t amplifies its error by σ_t/α_t; a v-network's x̂₀ stays well conditioned
  at every t, so the prior learns the data's structure at the noise levels that form it.

The loss is always taken on the network's own target, so ``v`` weighs ε-errors by 1/α_t².
"""
from __future__ import annotations

import torch

from ..errors import UsageError
from .sde import VPSDE, _bcast

PREDICTIONS = ("eps", "v")


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise UsageError(f"unknown prediction {prediction!r}; choose from {list(PREDICTIONS)}")
    return prediction


def target(prediction: str, sde: VPSDE, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The regression target of the network for a forward draw x_t = α_t x₀ + σ_t ε."""
    if check_prediction(prediction) == "eps":
        return noise
    return _bcast(sde.alpha(t), x0) * noise - _bcast(sde.sigma(t), x0) * x0


def eps_from_output(prediction: str, sde: VPSDE, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The network output at (x_t, t) as an ε estimate."""
    if check_prediction(prediction) == "eps":
        return out
    return _bcast(sde.sigma(t), x_t) * x_t + _bcast(sde.alpha(t), x_t) * out
