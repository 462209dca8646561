"""Missingness mechanisms → ``obs_mask`` (1 = observed, 0 = missing), and zero-imputation.

Masks are drawn once from an explicit generator and then fixed: a training image keeps its mask
for the whole run (redrawing per batch would let a model see every pixel over time).

Every mechanism has one signature that sees the data, ``mechanism(x, rate, generator, **params)
-> obs_mask`` (x: N×C×H×W in [0, 1]; a pixel's mask is shared by its channels), and meets the
target missing ``rate`` on average — :func:`make_mask` checks that it did:

- ``mcar``: each pixel missing independently with probability ``rate``;
- ``block``: random ``size``×``size`` square holes per image (MisGAN-style occlusions), added
  until the image's missing fraction reaches ``rate``;
- ``half``: a band of width ``rate``·W (or height) missing from one side of each image (``side``
  = left, right, top, bottom, or random per image); rate 0.5 is "half the image";
- ``mar``: missing at random — the top ``observed_rows`` rows are always observed, and each other
  pixel of an image is missing with probability sigmoid(``strength``·s + b), s the image's
  standardised random projection of its observed rows (the usual logistic MAR simulator); b is
  solved so the rate is met;
- ``mnar``: self-masking (as in not-MIWAE) — a pixel is missing with probability
  sigmoid(``strength``·(x − 0.5) + b), rising with its own intensity; b solved for the rate.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch

from . import rng
from .errors import UsageError

# Mechanisms: ``fn(x, rate, generator, **params) -> obs_mask`` (N×C×H×W, 1 = observed), by name.
# A new mechanism is one function with ``@register_mechanism`` (in its own module, imported once).
MECHANISMS: dict[str, Callable[..., torch.Tensor]] = {}


def register_mechanism(name: str):
    def wrap(fn):
        MECHANISMS[name] = fn
        return fn
    return wrap


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise UsageError(f"missing rate must be in [0, 1], got {rate}")


def mcar_mask(shape, rate: float, generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
    """Missing-completely-at-random mask: each pixel is missing independently with prob. ``rate``.

    ``shape`` is N×C×H×W; the same mask applies to every channel of a pixel.
    """
    _check_rate(rate)
    if generator is None:
        generator = rng.generator(0 if seed is None else seed)
    n, c, h, w = shape
    keep = rng.rand((n, 1, h, w), generator) >= rate
    return keep.float().expand(n, c, h, w).contiguous()


@register_mechanism("mcar")
def mcar(x: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    return mcar_mask(tuple(x.shape), rate, generator)


@register_mechanism("block")
def block(x: torch.Tensor, rate: float, generator: torch.Generator, size: int | None = None) -> torch.Tensor:
    n, c, h, w = x.shape
    size = int(size or max(1, round(min(h, w) / 4)))
    if not 1 <= size <= min(h, w):
        raise UsageError(f"block: size {size} must be in [1, {min(h, w)}]")
    missing = torch.zeros((n, h, w), dtype=torch.bool)
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    for _ in range(10 * h * w):  # each round adds one hole to every image still short of the rate
        short = missing.flatten(1).float().mean(1) < rate - 1e-9
        if not short.any():
            break
        top = rng.randint(0, h - size + 1, (n,), generator).view(n, 1, 1)
        left = rng.randint(0, w - size + 1, (n,), generator).view(n, 1, 1)
        hole = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
        missing |= hole & short.view(n, 1, 1)
    return (~missing).float().unsqueeze(1).expand(n, c, h, w).contiguous()


SIDES = ("left", "right", "top", "bottom")


@register_mechanism("half")
def half(x: torch.Tensor, rate: float, generator: torch.Generator, side: str = "random") -> torch.Tensor:
    n, c, h, w = x.shape
    if side != "random" and side not in SIDES:
        raise UsageError(f"half: side {side!r}; choose from {['random', *SIDES]}")
    which = (rng.randint(0, 4, (n,), generator) if side == "random"
             else torch.full((n,), SIDES.index(side)))
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    bw, bh = round(rate * w), round(rate * h)
    which = which.view(n, 1, 1)
    missing = (((which == 0) & (cols < bw)) | ((which == 1) & (cols >= w - bw))
               | ((which == 2) & (rows < bh)) | ((which == 3) & (rows >= h - bh)))
    return (~missing).float().unsqueeze(1).expand(n, c, h, w).contiguous()


def _solve_bias(logits: torch.Tensor, target: float) -> float:
    """b with mean(sigmoid(logits + b)) = target, by bisection (the mean is monotone in b)."""
    lo, hi = -50.0, 50.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if torch.sigmoid(logits + mid).mean().item() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _bernoulli_missing(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return rng.rand(p.shape, generator) < p


@register_mechanism("mar")
def mar(x: torch.Tensor, rate: float, generator: torch.Generator, observed_rows: int | None = None,
        strength: float = 2.0) -> torch.Tensor:
    n, c, h, w = x.shape
    k = int(observed_rows if observed_rows is not None else max(1, h // 4))
    if not 1 <= k < h:
        raise UsageError(f"mar: observed_rows {k} must be in [1, {h - 1}]")
    eligible = 1.0 - k / h  # the fraction of pixels that may go missing
    if rate > eligible + 1e-9:
        raise UsageError(f"mar: rate {rate} exceeds the {eligible:.2f} of pixels outside the {k} always-observed rows")
    target = rate / eligible
    region = x[:, :, :k, :].mean(1).flatten(1)  # N × (k·W): what is always observed
    weights = rng.randn(region.shape[1], generator)
    s = region @ weights
    s = (s - s.mean()) / s.std().clamp_min(1e-8)
    logits = (strength * s).view(n, 1, 1).expand(n, h - k, w)
    p = torch.sigmoid(logits + _solve_bias(logits, target)) if 0 < target < 1 else torch.full_like(logits, target)
    missing = torch.zeros((n, h, w), dtype=torch.bool)
    missing[:, k:, :] = _bernoulli_missing(p, generator)
    return (~missing).float().unsqueeze(1).expand(n, c, h, w).contiguous()


@register_mechanism("mnar")
def mnar(x: torch.Tensor, rate: float, generator: torch.Generator, strength: float = 6.0) -> torch.Tensor:
    n, c, h, w = x.shape
    logits = strength * (x.mean(1) - 0.5)  # N × H × W: a pixel's own intensity
    p = torch.sigmoid(logits + _solve_bias(logits, rate)) if 0 < rate < 1 else torch.full_like(logits, rate)
    missing = _bernoulli_missing(p, generator)
    return (~missing).float().unsqueeze(1).expand(n, c, h, w).contiguous()


def mechanism_parameters(name: str) -> list[str]:
    """The keyword parameters of mechanism ``name`` (beyond x, rate, generator)."""
    return [p for p in inspect.signature(MECHANISMS[name]).parameters if p not in ("x", "rate", "generator")]


def check_mechanism(name: str, params: dict | None = None) -> None:
    """ValueError unless ``name`` is a registered mechanism and ``params`` are among its parameters."""
    if name not in MECHANISMS:
        raise UsageError(f"{name!r} is not one of {sorted(MECHANISMS)}")
    unknown = sorted(set(params or {}) - set(mechanism_parameters(name)))
    if unknown:
        raise UsageError(f"{unknown} are not parameters of {name!r} (valid: {mechanism_parameters(name)})")


def rate_tolerance(rate: float, n_pixels: int) -> float:
    """How far a mask's missing fraction may sit from its target: 5 binomial standard errors plus
    a pixel's worth of rounding per image row (bands and blocks come in whole pixels)."""
    return 5.0 * math.sqrt(max(rate * (1.0 - rate), 1e-12) / max(1, n_pixels)) + 0.03


def make_mask(mechanism: str, x, rate: float, seed: int, **params) -> torch.Tensor:
    """Mask from a named mechanism for data ``x`` (N×C×H×W; MCAR also takes just the shape),
    reproducible from ``seed``; raises if the drawn mask misses the target rate."""
    if mechanism not in MECHANISMS:
        raise UsageError(f"unknown missingness mechanism {mechanism!r}; choose from {sorted(MECHANISMS)}")
    _check_rate(rate)
    if not isinstance(x, torch.Tensor):
        if mechanism != "mcar":
            raise UsageError(f"the {mechanism!r} mechanism depends on the data: pass the images, not a shape")
        x = torch.zeros(tuple(x))  # MCAR reads only the shape
    generator = rng.generator(seed)
    try:
        mask = MECHANISMS[mechanism](x, rate, generator, **params)
    except TypeError as exc:
        raise UsageError(f"{mechanism}: {exc}") from exc
    missing = 1.0 - mask[:, 0].mean().item()
    if abs(missing - rate) > rate_tolerance(rate, mask[:, 0].numel()):
        raise UsageError(f"{mechanism} drew a {missing:.3f} missing fraction for a target of {rate}; "
                         f"its parameters {params} cannot meet this rate")
    return mask


def apply_mask(x: torch.Tensor, obs_mask: torch.Tensor, fill_value: float = 0.0) -> torch.Tensor:
    """Incomplete data x̃ = m⊙x + (1−m)·fill (zero-imputation when ``fill_value`` is 0)."""
    return x * obs_mask + fill_value * (1.0 - obs_mask)
