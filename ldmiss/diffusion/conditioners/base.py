"""What every conditioner sees: the unconditional prior, the observation, and the registry.

A conditioner turns an unconditional diffusion prior into a sampler of p(x | observed pixels)
(deepinv's split: prior score + a data-fidelity object). It never knows whether it runs in the
latent space of LDMiss or in pixel space: :class:`Prior` holds the score and the SDE of the
diffusion space, :class:`Observation` maps that space to pixels (``decode``) and back (``encode``).
For the pixel models ``decode`` is the affine map [−1, 1] → [0, 1] and ``elementwise`` is true,
which is what pixel ``replacement`` needs.

Each conditioner is one module with one function
``run(prior, obs, generator, cfg, steps, progress) -> x`` (x in the diffusion space), its config
dataclass (the paper's knobs as named fields, paper defaults) and its cost in network
evaluations per image, ``nfe(cfg, steps)`` — checked against :attr:`Prior.nfe` in the tests, and
inverted by ``steps_for_nfe`` for comparisons at equal cost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ... import rng
from ...errors import UsageError
from ..samplers import resolve_grid, times
from ..sde import VPSDE, _bcast

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Prior:
    """The unconditional model in its diffusion space, with network-evaluation counters.

    ``method`` and ``grid`` are the prior's own sampler (used by the conditioners that take plain
    reverse steps between their corrections). ``score`` counts every forward evaluation, per row;
    :meth:`count_backward` is called by conditioners that backpropagate through the network.
    """

    score_fn: ScoreFn
    sde: VPSDE
    shape: tuple[int, ...]
    method: str = "ancestral"
    grid: str = "linear"
    device: str | torch.device = "cpu"
    rows: int = 0  # forward evaluations, counted per sample row
    backward_rows: int = 0
    images: int = 0  # images conditioned so far (set by the runner)

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.score_fn(x, t)

    def count_backward(self, rows: int) -> None:
        self.backward_rows += int(rows)

    def denoise(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(score, x̂₀ = E[x₀ | x_t]) at per-sample times ``t``."""
        s = self.score(x, t)
        return s, self.sde.tweedie(x, s, t)

    def noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        return rng.randn((n, *self.shape), generator, self.device)

    def time_grid(self, steps: int) -> torch.Tensor:
        return resolve_grid(self.sde, steps, self.grid)

    @property
    def nfe(self) -> float:
        """Forward network evaluations per conditioned image so far."""
        return self.rows / max(self.images, 1)

    @property
    def backward_nfe(self) -> float:
        return self.backward_rows / max(self.images, 1)


@dataclass
class Observation:
    """The data-fidelity side: observed pixels, their mask, and the maps to and from pixel space.

    ``x_obs`` and ``mask`` are N×C×H×W in pixel space ([0, 1]); ``decode`` maps the diffusion space to
    pixels differentiably; ``encode`` maps complete pixel images into the diffusion space (latent
    RePaint re-encodes pasted images); ``elementwise`` says the diffusion space *is* pixel space up
    to an elementwise affine map, so its entries can be masked (pixel replacement). ``missingness``,
    when the model learnt p(m | x) (data missing not at random), is ``(mask, x_obs, pixels) →
    log p(m | x_o, x_m)`` per sample, the missing values' law centred on ``pixels``: the mask itself is
    then evidence about the missing pixels (self-guidance adds it to its data term).
    ``encode_observed`` maps the *incomplete* images (x_obs, mask) to the diffusion space where the
    model has an encoder for them (LDMiss's β-VAE: the latents its prior is trained on), for
    conditioners that start from that guess rather than from pure noise."""

    x_obs: torch.Tensor
    mask: torch.Tensor
    decode: Callable[[torch.Tensor], torch.Tensor]
    encode: Callable[[torch.Tensor], torch.Tensor]
    elementwise: bool = False
    missingness: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    encode_observed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def residual(self, x0: torch.Tensor) -> torch.Tensor:
        """m ⊙ (x_obs − D(x₀)), in pixel space."""
        return self.mask * (self.x_obs - self.decode(x0))

    def sq_error(self, x0: torch.Tensor) -> torch.Tensor:
        """‖m ⊙ (x_obs − D(x₀))‖² per sample (N,)."""
        return self.residual(x0).pow(2).flatten(1).sum(1)

    def log_missingness(self, pixels: torch.Tensor) -> torch.Tensor:
        """log p(m | x_o, x_m) per sample for the missing values ``pixels`` (0 without a missingness model)."""
        if self.missingness is None:
            return torch.zeros(pixels.shape[0], device=pixels.device)
        return self.missingness(self.mask, self.x_obs, pixels)

    def paste(self, pixels: torch.Tensor) -> torch.Tensor:
        """Observed pixels from the observation, the rest from ``pixels``."""
        return self.mask * self.x_obs + (1.0 - self.mask) * pixels

    def repeat(self, k: int) -> "Observation":
        """The same observation for K particles per image (rows image-major: i·K + k)."""
        return Observation(self.x_obs.repeat_interleave(k, 0), self.mask.repeat_interleave(k, 0), self.decode,
                           self.encode, self.elementwise, self.missingness, self.encode_observed)


def per_sample_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1)


def per_sample_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1)


def bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return _bcast(v, like)


@dataclass(frozen=True)
class Conditioner:
    """A registry entry. ``needs``: what the observation must offer (``"elementwise"``) and what the
    prior's sampler must be (``"one_eval_sampler"``: one network evaluation per step, for a
    conditioner that steps from a score it evaluated itself)."""

    name: str
    run: Callable
    config_cls: type
    nfe: Callable[[object, int], float]
    steps_for_nfe: Callable[[object, float], int]
    reference: str
    needs: frozenset = field(default_factory=frozenset)
    # True: it drives the prior's own sampler (``samplers.sample``), so its cost follows that
    # sampler's evaluations per step; ``nfe`` then counts what a first-order sampler spends
    follows_sampler: bool = False

    def planned_nfe(self, cfg, steps: int, sampler: str) -> float:
        """Forward evaluations per image of one solve when the prior samples with ``sampler``: every
        evaluation but the last step's is repeated by a sampler that evaluates several times per step."""
        from ..samplers import EVALS_PER_STEP
        if self.follows_sampler:
            return (self.nfe(cfg, steps) - 1) * EVALS_PER_STEP[sampler] + 1
        return self.nfe(cfg, steps)

    def supports(self, elementwise: bool) -> bool:
        return "elementwise" not in self.needs or elementwise

    def works_with(self, sampler: str) -> bool:
        """Whether it can run on a prior that samples with ``sampler``."""
        from ..samplers import EVALS_PER_STEP, MULTISTEP
        return "one_eval_sampler" not in self.needs or (EVALS_PER_STEP.get(sampler, 1) == 1
                                                          and sampler not in MULTISTEP)


CONDITIONERS: dict[str, Conditioner] = {}


def register_conditioner(name: str, config_cls: type, *, nfe, steps_for_nfe, reference: str, needs=(),
                         follows_sampler: bool = False):
    """Decorator for a conditioner's ``run`` function."""
    def wrap(fn):
        CONDITIONERS[name] = Conditioner(name, fn, config_cls, nfe, steps_for_nfe, reference, frozenset(needs),
                                         follows_sampler)
        return fn
    return wrap


def get_conditioner(name: str) -> Conditioner:
    if name not in CONDITIONERS:
        raise UsageError(f"unknown conditioner {name!r}; choose from {sorted(CONDITIONERS)}")
    return CONDITIONERS[name]


def run_conditioner(name: str, prior: Prior, obs: Observation, generator, cfg, steps: int,
                    progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Condition one batch: count its images on the prior and run the named conditioner."""
    cond = get_conditioner(name)
    if not cond.supports(obs.elementwise):
        raise UsageError(f"conditioner {name!r} needs a diffusion space that is pixel space (elementwise)")
    prior.images += obs.x_obs.shape[0]
    return cond.run(prior, obs, generator, cfg, steps, progress)


def prior_step(prior: Prior, x: torch.Tensor, t, s, score: torch.Tensor, generator, last: bool):
    """One step of the prior's own sampler from t to s with an already evaluated ``score``
    (no network evaluation): returns (x_s, x̂₀). Only a sampler that evaluates once per step can
    take a step from a score evaluated elsewhere."""
    from ..samplers import EVALS_PER_STEP, MULTISTEP, get_stepper
    if prior.method in MULTISTEP:
        raise UsageError(f"this conditioner takes the prior's steps one at a time; the sampler {prior.method!r} "
                         "extrapolates from earlier steps' x̂₀, which those steps do not carry: choose a one-step "
                         "sampler (em, ancestral, ode) for it")
    if EVALS_PER_STEP.get(prior.method, 1) > 1:
        raise UsageError(f"this conditioner takes the prior's steps from one score evaluation; the sampler "
                         f"{prior.method!r} evaluates {EVALS_PER_STEP[prior.method]} times per step: "
                         "choose a first-order sampler (em, ancestral, ode) for it")
    return get_stepper(prior.method)(lambda *_: score, prior.sde, x, t, s, generator, last)


time_vector = times  # the samplers' per-sample time vector, under the name the conditioners use
