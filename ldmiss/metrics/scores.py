"""FID and IS on a dataset's shipped metric network; MSE, PSNR and SSIM on missing pixels.

FID and IS come from torchmetrics (float64 moments, eigenvalue-based matrix square root) with our
feature network plugged in (``dataset`` picks it: metrics/features.py); every result carries N so a
number is never quoted without it. The reference statistics of a real set are computed once and
reused for every method of a comparison. The pixel metrics need no network, so every dataset has them.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from .. import rng
from .features import Features, Logits


def _tensor(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    if t.ndim == 3:
        t = t[:, None]
    return t


def _batches(x: torch.Tensor, bs: int = 1000):
    for i in range(0, len(x), bs):
        yield x[i:i + bs]


class FIDReference:
    """Reference statistics (of e.g. the MNIST test set) that many FIDs are measured against."""

    def __init__(self, real, name: str = "reference", dataset: str = "mnist"):
        real = _tensor(real)
        self.n, self.name, self.dataset = len(real), name, dataset
        self.cache: dict = {}  # results that depend only on this reference (e.g. a seed's metric floor)
        self._metric = FrechetInceptionDistance(feature=Features(dataset), normalize=True, reset_real_features=False)
        with torch.inference_mode():
            for b in _batches(real):
                self._metric.update(b, real=True)

    def fid(self, fake) -> float:
        fake = _tensor(fake)
        if len(fake) < 2:
            raise ValueError("FID needs at least 2 images")
        metric = copy.deepcopy(self._metric)
        metric.reset()  # keeps the real statistics (reset_real_features=False)
        with torch.inference_mode():
            for b in _batches(fake):
                metric.update(b, real=False)
            return float(metric.compute())


def fid(real, fake, dataset: str = "mnist") -> float:
    """FID between two image sets in [0, 1] (N×1×28×28 or N×28×28)."""
    return FIDReference(real, dataset=dataset).fid(fake)


def inception_score(images, splits: int = 1, dataset: str = "mnist") -> tuple[float, float]:
    """IS (mean, std over splits) from the classifier's softmax; 1 ≤ IS ≤ 10 on MNIST.

    torchmetrics shuffles the features with torch's global RNG before splitting them, which moves the
    score in its 7th digit: under a fixed seed here, so an IS depends on the images alone."""
    with warnings.catch_warnings(), rng.isolated(0):  # torchmetrics warns that IS buffers features (fine at MNIST scale)
        warnings.simplefilter("ignore", UserWarning)
        metric = InceptionScore(feature=Logits(dataset), splits=splits, normalize=False)
        with torch.inference_mode():
            for b in _batches(_tensor(images)):
                metric.update(b)
            mean, std = metric.compute()
    return float(mean), (float(std) if splits > 1 else 0.0)


def missing_mse(imputed, truth, obs_mask) -> float:
    """Mean squared error over the missing pixels only (obs_mask = 0), in [0, 1] scale."""
    imputed, truth, mask = _tensor(imputed), _tensor(truth), _tensor(obs_mask)
    missing = mask == 0
    if not missing.any():
        raise ValueError("no missing pixel: MSE on missing pixels is undefined")
    return float(((imputed - truth)[missing] ** 2).mean())


def _missing_per_image(imputed, truth, obs_mask):
    imputed, truth, mask = _tensor(imputed), _tensor(truth), _tensor(obs_mask)
    missing = (mask == 0).float()
    counts = missing.flatten(1).sum(1)
    if not (counts > 0).any():
        raise ValueError("no missing pixel: metrics on missing pixels are undefined")
    return imputed, truth, missing, counts


def missing_psnr(imputed, truth, obs_mask) -> float:
    """PSNR (dB, peak 1) on each image's missing pixels, averaged over the images that have any."""
    imputed, truth, missing, counts = _missing_per_image(imputed, truth, obs_mask)
    mse = (((imputed - truth) ** 2) * missing).flatten(1).sum(1) / counts.clamp_min(1)
    keep = counts > 0
    return float((10.0 * torch.log10(1.0 / mse[keep].clamp_min(1e-10))).mean())


def _gaussian_window(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_map(a: torch.Tensor, b: torch.Tensor, size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004; Gaussian window, data range 1, reflect-padded), per channel."""
    c = a.shape[1]
    win = _gaussian_window(size, sigma).to(a).expand(c, 1, size, size)
    pad = size // 2

    def blur(t):
        return torch.nn.functional.conv2d(torch.nn.functional.pad(t, (pad,) * 4, mode="reflect"), win, groups=c)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def missing_ssim(imputed, truth, obs_mask) -> float:
    """SSIM averaged over the missing pixels (the local structure around each filled-in pixel)."""
    imputed, truth, missing, _ = _missing_per_image(imputed, truth, obs_mask)
    s = ssim_map(imputed, truth)
    return float((s * missing).sum() / missing.sum())


def features(images, dataset: str = "mnist") -> torch.Tensor:
    """The metric network's penultimate features (the space FID is measured in)."""
    net = Features(dataset)
    with torch.inference_mode():
        return torch.cat([net(b) for b in _batches(_tensor(images))])


def _nn_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each row of ``a``, the Euclidean distance to its nearest row of ``b``."""
    return torch.cat([torch.cdist(chunk, b).min(dim=1).values for chunk in a.split(1000)])


def memorization_ratio(generated, train, held_out, dataset: str = "mnist") -> dict:
    """median NN distance of ``generated`` to ``train`` ÷ to ``held_out`` (equal-size real sets) in
    feature space. ≈ 1: samples are as close to the training images as to unseen ones; → 0: the
    model reproduces its training images (a prior that copies its latents scores well on FID)."""
    train, held_out = _tensor(train), _tensor(held_out)
    n = min(len(train), len(held_out))
    if n < 1:
        raise ValueError("memorisation check needs at least one training and one held-out image")
    fg, ft, fh = (features(a, dataset) for a in (generated, train[:n], held_out[:n]))
    d_train, d_held = _nn_distance(fg, ft).median(), _nn_distance(fg, fh).median()
    return {"ratio": float(d_train / d_held.clamp_min(1e-12)), "nn_train": float(d_train),
            "nn_held_out": float(d_held), "n_real": n}
