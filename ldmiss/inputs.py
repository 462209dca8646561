"""Validation of user-supplied images and masks at the public boundary.

Everything inside the package assumes float32 images in [0, 1] of shape N×C×H×W and a binary
``obs_mask`` of the same shape. This module is the one place that turns what a user hands us
(NumPy or torch, uint8 0–255 or float, NaN for missing, N×H×W or N×C×H×W) into that, and that
refuses with a clear message anything it cannot interpret: bad input must never surface as a
traceback from deep inside torch, nor as a silently wrong answer.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from .errors import UsageError


class InputError(UsageError):
    """User input that cannot be interpreted (shape, range, mask values)."""


def _as_tensor(a, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu()
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise InputError(f"{what}: cannot convert {type(a).__name__} to an array ({exc})") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{what}: expected a numeric array, got dtype {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _to_nchw(t: torch.Tensor, what: str, image_shape: tuple[int, int, int] | None) -> torch.Tensor:
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if t.ndim != 4:
        expect = f"N×{image_shape[0]}×{image_shape[1]}×{image_shape[2]}" if image_shape else "N×C×H×W"
        raise InputError(f"{what}: expected a batch of images of shape N×H×W or {expect}, got shape {tuple(t.shape)}")
    if image_shape is None and t.shape[-1] in (1, 3, 4) and t.shape[1] > 4:
        raise InputError(f"{what}: shape {tuple(t.shape)} looks channels-last (N×H×W×C); pass N×C×H×W, "
                         f"e.g. np.moveaxis(x, -1, 1), or N×H×W for grayscale")
    if image_shape is not None and tuple(t.shape[1:]) != tuple(image_shape):
        if t.shape[-1] == image_shape[0] and tuple(t.shape[1:3]) == tuple(image_shape[1:]):
            hint = " (channels-last? move the channel axis to position 1)"
        else:
            hint = ""
        raise InputError(f"{what}: each image must have shape {tuple(image_shape)} (C×H×W) for this model, "
                         f"got {tuple(t.shape[1:])}{hint}")
    return t


def prepare_images(x, obs_mask=None, image_shape: tuple[int, int, int] | None = None,
                   fill_value: float = 0.0, what: str = "x") -> tuple[torch.Tensor, torch.Tensor]:
    """Return (x̃, obs_mask) as float32 N×C×H×W, x̃ in [0, 1] with missing pixels = ``fill_value``.

    - uint8 / integer input in 0–255 is divided by 255 (integer input holding only 0/1 is refused as
      ambiguous); float input must lie in [0, 1]; channels-last batches are refused with a hint;
    - NaN marks a missing pixel (combined with ``obs_mask`` if both are given);
    - ±inf is an error anywhere; a NaN at a pixel the mask calls observed is an error;
    - ``obs_mask`` must have the image's shape and hold only 0/1 (bool or numeric).
    """
    t = _to_nchw(_as_tensor(x, what), what, image_shape)
    if t.shape[0] == 0:
        raise InputError(f"{what}: empty batch (0 images)")
    if t.dtype == torch.bool:
        raise InputError(f"{what}: boolean images are ambiguous; pass uint8 0–255 or float in [0, 1]")
    if not torch.is_floating_point(t):
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi > 255:
            raise InputError(f"{what}: integer images must be in 0–255, got values in [{lo}, {hi}]")
        if hi <= 1:
            raise InputError(f"{what}: integer images holding only 0 and 1 are ambiguous (0–255 data would be "
                             f"divided by 255); pass binary images as float (x.astype('float32')), or 0–255 as uint8")
        t = t.float() / 255.0
    else:
        t = t.float()
        if torch.isinf(t).any():
            raise InputError(f"{what}: contains ±inf; mark missing pixels with NaN or obs_mask instead")
        finite = t[~torch.isnan(t)]
        if finite.numel() and (finite.min() < 0.0 or finite.max() > 1.0):
            lo, hi = float(finite.min()), float(finite.max())
            hint = " — looks like 0–255 data: pass it as uint8 or divide by 255" if hi > 1.0 and hi <= 255.0 and lo >= 0 else ""
            raise InputError(f"{what}: float images must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}]{hint}")
    nan = torch.isnan(t)
    if obs_mask is None:
        mask = (~nan).float()
    else:
        mask = _to_nchw(_as_tensor(obs_mask, "obs_mask"), "obs_mask", None)
        if tuple(mask.shape) != tuple(t.shape):
            raise InputError(f"obs_mask: shape {tuple(mask.shape)} does not match the images' shape {tuple(t.shape)}")
        if mask.dtype != torch.bool:
            m = mask.float()
            if torch.isnan(m).any() or not torch.all((m == 0) | (m == 1)):
                bad = m[~((m == 0) | (m == 1))][:3].tolist()
                raise InputError(f"obs_mask: must be binary (1 = observed, 0 = missing), found values like {bad}")
            mask = m
        mask = mask.float()
        if (nan & (mask > 0)).any():
            raise InputError(f"{what}: NaN at pixels that obs_mask marks as observed; set obs_mask to 0 there")
    x_tilde = torch.where(mask > 0, torch.nan_to_num(t, nan=0.0), torch.full_like(t, fill_value))
    return x_tilde.contiguous(), mask.contiguous()


def warn_if_unobserved(obs_mask: torch.Tensor, how: str = "from the unconditional prior (a sample, not a "
                       "reconstruction)") -> torch.Tensor:
    """Warn about images with no observed pixel (``how``: what the method fills them with); return that flag."""
    empty = obs_mask.flatten(1).sum(1) == 0
    if empty.any():
        warnings.warn(f"{int(empty.sum())} image(s) have no observed pixel; they are imputed {how}",
                      UserWarning, stacklevel=3)
    return empty
