"""Multiple-imputation quality on missing pixels: interval coverage and CRPS from D draws.

A point error (MSE) cannot tell a sampler that draws from the posterior from one that returns its
mean; these can. ``draws`` is D×N×C×H×W, ``truth`` N×C×H×W, ``obs_mask`` 1 = observed; only
missing pixels are scored.
"""
from __future__ import annotations

import numpy as np
import torch


def _np(a) -> np.ndarray:
    return a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def central_interval(draws, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel empirical quantiles (½(1 − level), ½(1 + level)) over the draws (axis 0)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    d = _np(draws)
    if d.shape[0] < 2:
        raise ValueError("an interval needs at least 2 draws")
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo.astype(np.float32), hi.astype(np.float32)


GREY_LEVEL = 1.0 / 255.0


def coverage(draws, truth, obs_mask, level: float = 0.9, tolerance: float = 0.5 * GREY_LEVEL) -> float:
    """Fraction of missing pixels whose true value lies in the draws' central ``level`` interval,
    widened by ``tolerance`` on each side. Why the tolerance: images are 8-bit, and a decoder never
    outputs an exact 0 — without it no MNIST background pixel (true value exactly 0, ~80% of the
    missing pixels) is ever covered, whatever the sampler; half a grey level is the quantisation
    error of the truth itself. Nominal is ``level`` for a calibrated sampler with many draws; with
    few draws the empirical interval is narrower than the true one, so compare samplers at the same D."""
    lo, hi = central_interval(draws, level)
    t, missing = _np(truth), _np(obs_mask) < 0.5
    inside = (t >= lo - tolerance) & (t <= hi + tolerance)
    return float(inside[missing].mean()) if missing.any() else float("nan")


def crps(draws, truth, obs_mask) -> float:
    """Mean CRPS over missing pixels, by the unbiased ensemble estimator
    E|X − y| − ½ E|X − X'| with the pairwise term over distinct draws (Gneiting & Raftery 2007)."""
    d = torch.as_tensor(_np(draws), dtype=torch.float64)
    t = torch.as_tensor(_np(truth), dtype=torch.float64)
    missing = torch.as_tensor(_np(obs_mask)) < 0.5
    if not missing.any():
        return float("nan")
    k = d.shape[0]
    if k < 2:
        raise ValueError("CRPS needs at least 2 draws")
    dm, tm = d[:, missing], t[missing]
    skill = (dm - tm).abs().mean(0)
    srt = dm.sort(0).values  # Σ_{i<j}|x_i − x_j| = Σ_i (2i − k + 1) x_(i) for sorted draws
    weights = (2 * torch.arange(k, dtype=torch.float64) - k + 1)[:, None]
    spread = (weights * srt).sum(0) / (k * (k - 1))
    return float((skill - spread).mean())


def interval_coverage(lo, hi, truth, obs_mask, tolerance: float = 0.5 * GREY_LEVEL) -> tuple[float, float]:
    """(coverage, mean width) on the missing pixels of a given per-pixel interval (lo, hi), with the
    same half-grey-level tolerance as :func:`coverage`: how calibrated intervals are scored."""
    t, missing = _np(truth), _np(obs_mask) < 0.5
    lo, hi = _np(lo), _np(hi)
    if not missing.any():
        return float("nan"), float("nan")
    inside = (t >= lo - tolerance) & (t <= hi + tolerance)
    return float(inside[missing].mean()), float((hi - lo)[missing].mean())


CSDI_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05, 0.10, …, 0.95


def quantile_crps(draws, truth, obs_mask, levels=CSDI_LEVELS) -> float:
    """The normalised quantile CRPS of CSDI (Tashiro et al., NeurIPS 2021), the imputation literature's
    usual probabilistic score: for each level α the quantile (pinball) loss of the draws' empirical
    α-quantile q̂_α, 2 Σ |(y − q̂_α)(1{y ≤ q̂_α} − α)| over missing pixels, divided by Σ |y| over them,
    averaged over α = 0.05, …, 0.95. The ensemble :func:`crps` is per pixel and unnormalised; this
    one is comparable with CSDI's and DiffPuter's tables (lower is better)."""
    d, t = _np(draws).astype(np.float64), _np(truth).astype(np.float64)
    missing = _np(obs_mask) < 0.5
    if not missing.any():
        return float("nan")
    denom = np.abs(t[missing]).sum()
    if denom == 0:
        return float("nan")
    q = np.quantile(d[:, missing], levels, axis=0)  # L × M
    y = t[missing][None]
    alpha = np.asarray(levels)[:, None]
    loss = 2.0 * np.abs((q - y) * ((y <= q).astype(np.float64) - alpha)).sum(1)
    return float((loss / denom).mean())


def energy_score(draws, truth, obs_mask) -> float:
    """Mean over images of the energy score of the draws on that image's missing pixels (Gneiting &
    Raftery 2007), E‖X − y‖ − ½ E‖X − X'‖ with the unbiased pairwise term over distinct draws: the
    multivariate CRPS, which rewards draws whose *joint* spread over an image's pixels is right (a
    per-pixel score cannot see whether a draw is a coherent image). Images without a missing pixel
    are left out."""
    d = torch.as_tensor(_np(draws), dtype=torch.float64)
    t = torch.as_tensor(_np(truth), dtype=torch.float64)
    missing = (torch.as_tensor(_np(obs_mask)) < 0.5).to(torch.float64)
    k = d.shape[0]
    if k < 2:
        raise ValueError("the energy score needs at least 2 draws")
    keep = missing.flatten(1).sum(1) > 0
    if not keep.any():
        return float("nan")
    dm = (d * missing).flatten(2)[:, keep]  # k × N × P, observed pixels zeroed
    tm = (t * missing).flatten(1)[keep]
    skill = (dm - tm[None]).norm(dim=2).mean(0)  # N
    pair = torch.cdist(dm.transpose(0, 1), dm.transpose(0, 1))  # N × k × k
    spread = pair.sum((1, 2)) / (k * (k - 1))
    return float((skill - 0.5 * spread).mean())
