"""What the network predicts, and how its output becomes ε (the samplers' currency).

For the VP-SDE x_t = α_t x₀ + σ_t ε with α_t² + σ_t² = 1:

- ``eps``: the network predicts ε (Ho et al. 2020); the DSM loss with λ_t = σ_t² is ‖ε_θ − ε‖².
- ``v``: the network predicts v = α_t ε − σ_t x₀ (Salimans & Ho 2022); then ε = σ_t x_t + α_t v and
  x̂₀ = α_t x_t − σ_t v. Why: at high noise an ε-network must output almost exactly x_t/σ_t and
  x̂₀ = (x_t − σ_t ε̂)/α_t amplifies its error by σ_t/α_t; a v-network's x̂₀ stays well conditioned
  at every t, so the prior learns the data's structure at the noise levels that form it.

- ``edm``: EDM's preconditioning (Karras et al. 2022, Table 1) in VP coordinates. With σ_e = σ_t/α_t,
  y = x_t/α_t and the data scale σ_d (``sigma_data``), the network sees c_in·y and its output F gives
  x̂₀ = c_skip·y + c_out·F, c_skip = σ_d²/(σ_e² + σ_d²), c_out = σ_e σ_d/√(σ_e² + σ_d²), c_in =
  1/√(σ_e² + σ_d²). In VP terms, with S = σ_t² + σ_d² α_t²: the input is x_t/√S (unit variance when the
  data's is σ_d²), x̂₀ = σ_d² α_t x_t/S + σ_t σ_d F/√S. The target is F* = (x₀ − c_skip·y)/c_out, so the
  plain MSE on F is EDM's λ(σ)‖x̂₀ − x₀‖² with λ c_out² = 1, its unit effective weight. With σ_d = 1 it
  is ``v`` with F = −v; σ_d < 1 moves the switch from predicting noise to predicting data towards
  lower noise. Pair it with ``time_dist = "logsnr"`` (its defaults are EDM's log-normal σ_e).

The loss is always taken on the network's own target, so ``v`` weighs ε-errors by 1/α_t².
"""
from __future__ import annotations

import torch

from ..errors import UsageError
from .sde import VPSDE, _bcast

PREDICTIONS = ("eps", "v", "edm")


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise UsageError(f"unknown prediction {prediction!r}; choose from {list(PREDICTIONS)}")
    return prediction


def _edm(sde: VPSDE, t: torch.Tensor, like: torch.Tensor, sigma_data: float):
    """(α_t, σ_t, √S) broadcast to ``like``, S = σ_t² + σ_d² α_t² (EDM in VP coordinates)."""
    a, s = _bcast(sde.alpha(t), like), _bcast(sde.sigma(t), like)
    return a, s, (s**2 + sigma_data**2 * a**2).sqrt()


def network_input(prediction: str, sde: VPSDE, x_t: torch.Tensor, t: torch.Tensor, sigma_data: float = 0.5):
    """What the network is given at (x_t, t): x_t itself, or EDM's c_in·y = x_t/√S."""
    if check_prediction(prediction) != "edm":
        return x_t
    return x_t / _edm(sde, t, x_t, sigma_data)[2]


def target(prediction: str, sde: VPSDE, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
           sigma_data: float = 0.5) -> torch.Tensor:
    """The regression target of the network for a forward draw x_t = α_t x₀ + σ_t ε."""
    prediction = check_prediction(prediction)
    if prediction == "eps":
        return noise
    if prediction == "v":
        return _bcast(sde.alpha(t), x0) * noise - _bcast(sde.sigma(t), x0) * x0
    a, s, root = _edm(sde, t, x0, sigma_data)
    # (x₀ − c_skip·y)/c_out with x_t = α x₀ + σ ε, simplified: no cancellation at low noise
    return (s * x0 - sigma_data**2 * a * noise) / (sigma_data * root)


def eps_from_output(prediction: str, sde: VPSDE, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                    sigma_data: float = 0.5) -> torch.Tensor:
    """The network output at (x_t, t) as an ε estimate."""
    prediction = check_prediction(prediction)
    if prediction == "eps":
        return out
    if prediction == "v":
        return _bcast(sde.sigma(t), x_t) * x_t + _bcast(sde.alpha(t), x_t) * out
    a, s, root = _edm(sde, t, x_t, sigma_data)
    # (x_t − α x̂₀)/σ with x̂₀ = σ_d² α x_t/S + σ σ_d F/√S, simplified (no division by a small σ)
    return s * x_t / root**2 - a * sigma_data * out / root
