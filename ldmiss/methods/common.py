"""Helpers the methods share: batched inference with one progress bar, and pixel ↔ model scaling."""
from __future__ import annotations

from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from ..diffusion import dsm_loss
from ..diffusion.parameterization import eps_from_output, network_input
from ..nets.precision import in_precision


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, batch_size)):
        yield slice(start, min(n, start + batch_size))


def progress_bar(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, mininterval=1.0)


def to_model_space(x01: torch.Tensor) -> torch.Tensor:
    """Pixel models work in [−1, 1]; this and :func:`to_pixel_space` are the only conversions."""
    return 2.0 * x01 - 1.0


def to_pixel_space(xm: torch.Tensor) -> torch.Tensor:
    return (xm + 1.0) / 2.0


def eps_score(net: torch.nn.Module, sde, prediction: str = "eps", precision: str = "fp32",
              compile: bool = False, sigma_data: float = 0.5) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """score_fn(x, t) = −ε_θ(x, t)/σ_t for the samplers, whatever the network predicts."""
    f = in_precision(net, precision, compile)

    def score(x, t):
        out = f(network_input(prediction, sde, x, t, sigma_data), t)
        return sde.score_from_eps(eps_from_output(prediction, sde, out, x, t, sigma_data), t)
    return score


def diffusion_loss(net: torch.nn.Module, sde, loss_cfg, masked: bool = False, precision: str = "fp32",
                   compile: bool = False):
    """The training closure ``loss(x0[, obs_mask], generator)`` for :func:`ldmiss.training.train`."""
    opts = dict(prediction=loss_cfg.prediction, time_dist=loss_cfg.time_dist, logsnr_mean=loss_cfg.logsnr_mean,
                logsnr_std=loss_cfg.logsnr_std, sigma_data=loss_cfg.sigma_data)
    f = in_precision(net, precision, compile)
    if masked:
        return lambda xb, mb, g: dsm_loss(f, sde, xb, mb, g, **opts)
    return lambda xb, g: dsm_loss(f, sde, xb, None, g, **opts)


def batched(fn: Callable, x: torch.Tensor, obs_mask: torch.Tensor, batch_size: int, device, desc: str,
            progress: bool, units_per_batch: int = 1) -> torch.Tensor:
    """``fn(x_batch, mask_batch, tick)`` over batches on ``device``, one progress bar for all of them
    (``tick(k)`` advances it; each batch is ``units_per_batch`` units), results concatenated on the CPU."""
    slices = list(batch_slices(len(x), batch_size))
    bar = progress_bar(len(slices) * units_per_batch, desc, progress)
    try:
        return torch.cat([fn(x[s].to(device), obs_mask[s].to(device), bar.update).cpu() for s in slices])
    finally:
        bar.close()
