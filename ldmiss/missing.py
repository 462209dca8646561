"""Missingness mechanisms → ``obs_mask`` (1 = observed, 0 = missing), and zero-imputation.

Masks are drawn once from an explicit generator and then fixed: a training image keeps its mask
for the whole run (redrawing per batch would let a model see every pixel over time).
"""
from __future__ import annotations

import torch


def mcar_mask(shape, rate: float, generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
    """Missing-completely-at-random mask: each pixel is missing independently with prob. ``rate``.

    ``shape`` is N×C×H×W; the same mask applies to every channel of a pixel.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"missing rate must be in [0, 1], got {rate}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    n, c, h, w = shape
    keep = torch.rand((n, 1, h, w), generator=generator) >= rate
    return keep.float().expand(n, c, h, w).contiguous()


MECHANISMS = {"mcar": mcar_mask}


def make_mask(mechanism: str, shape, rate: float, seed: int) -> torch.Tensor:
    """Mask from a named mechanism, reproducible from ``seed``."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown missingness mechanism {mechanism!r}; choose from {sorted(MECHANISMS)}")
    return MECHANISMS[mechanism](shape, rate, generator=torch.Generator().manual_seed(seed))


def apply_mask(x: torch.Tensor, obs_mask: torch.Tensor, fill_value: float = 0.0) -> torch.Tensor:
    """Incomplete data x̃ = m⊙x + (1−m)·fill (zero-imputation when ``fill_value`` is 0)."""
    return x * obs_mask + fill_value * (1.0 - obs_mask)
