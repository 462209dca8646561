"""Validation of user-supplied images and masks at the public boundary.

Everything inside the package assumes float32 images in [0, 1] of shape N×C×H×W and a binary
``obs_mask`` of the same shape. This module is the one place that turns what a user hands us
(NumPy or torch, uint8 0–255, uint16 0–65535, bool or float, NaN for missing, N×H×W or N×C×H×W)
into that, and that refuses with a clear message anything it cannot interpret: bad input must
never surface as a traceback from deep inside torch, nor as a silently wrong answer — an image
scaled by a range it does not have is such an answer, so every range is read from the dtype and
checked against the values.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from .errors import UsageError


class InputError(UsageError):
    """User input that cannot be interpreted (shape, range, mask values)."""


def _as_array(a, what: str) -> np.ndarray:
    """A NumPy view of the input: the range checks run in NumPy because torch lacks reductions for
    some dtypes it can hold (``min`` of a uint16 tensor is not implemented)."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.dtype in (torch.bfloat16,) or (a.is_floating_point() and a.dtype not in (torch.float16, torch.float32,
                                                                                      torch.float64)):
            a = a.float()  # NumPy has no bfloat16 / float8
        if a.is_complex():
            raise InputError(f"{what}: expected a real-valued array, got dtype {a.dtype}")
        return a.numpy()
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise InputError(f"{what}: cannot convert {type(a).__name__} to an array ({exc})") from exc
    if arr.dtype == object or np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{what}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _to_nchw(t: np.ndarray, what: str, image_shape: tuple[int, int, int] | None) -> np.ndarray:
    if t.ndim == 3:
        t = t[:, None]
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


def range_fix(lo: float, hi: float) -> str:
    """How to turn data spanning [lo, hi] into floats in [0, 1]: the likeliest full scales for the
    range seen, said as a fix (the data alone cannot tell 0–16 digits from dark 0–255 levels, so
    the message names the candidates instead of guessing)."""
    if lo < 0:
        return "if they span [-1, 1], pass (x + 1) / 2; otherwise rescale them to floats in [0, 1] yourself"
    if hi <= 1:
        return "if they are binary, pass them as bool or as floats (x.astype(np.float32))"
    if hi <= 16:
        return (f"if {hi:g} is their full scale (sklearn's digits are 0–16), divide by {hi:g} and pass floats in [0, 1]; "
                f"if they are dark 0–255 levels, divide by 255")
    if hi <= 255:
        return "if they are 0–255 levels, pass them as uint8 (x.astype(np.uint8)) or divide by 255"
    if hi <= 4095:
        return ("if they are 12-bit (0–4095) or 10-bit (0–1023) levels, divide by 4095 or 1023 and pass floats in "
                "[0, 1]; if they are dark 16-bit levels, divide by 65535")
    if hi <= 65535:
        return "if they are 16-bit levels, pass them as uint16 (x.astype(np.uint16)) or divide by 65535"
    return f"divide by their full scale (e.g. x / {hi:g}) and pass floats in [0, 1]"


def to_unit_range(arr: np.ndarray, what: str = "x") -> np.ndarray:
    """float32 in [0, 1] (NaN kept) from an array whose dtype says what its range is.

    An integer dtype's range is its scale: uint8 is divided by 255, uint16 by 65535 (any unsigned
    type by its maximum) and bool is 0/1. That scale is only trusted when the data fills more than
    1/16 of it: uint8 data topping out at 16 is far likelier 0–16 digits or 0/1 labels than dark
    photographs, and uint16 data ≤ 4095 likelier 12-bit than 16-bit; dividing such data by the
    dtype's maximum would train silently on near-black images, so it is refused with the fix.
    Signed integers name no scale at all (int64 is what ``np.array`` of Python ints gives), so
    they are refused with the dtype that fits their values. Floats must already lie in [0, 1].
    """
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if np.issubdtype(arr.dtype, np.signedinteger):
            raise InputError(f"{what}: {arr.dtype} images have no fixed range (values {lo}–{hi}); pass uint8 0–255, "
                             f"uint16 0–65535 or floats in [0, 1] — {range_fix(lo, hi)}")
        full = int(np.iinfo(arr.dtype).max)
        if hi <= (full + 1) // 16:
            raise InputError(f"{what}: {arr.dtype} images use only values {lo}–{hi} of 0–{full}, an ambiguous range "
                             f"(dividing by {full} would make them near-black): {range_fix(lo, hi)}")
        return (arr.astype(np.float64 if full > 65535 else np.float32) / full).astype(np.float32)
    if np.isinf(arr).any():
        raise InputError(f"{what}: contains ±inf; mark missing pixels with NaN or obs_mask instead")
    x = arr.astype(np.float32)
    finite = x[~np.isnan(x)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        lo, hi = float(finite.min()), float(finite.max())
        raise InputError(f"{what}: float images must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}]: "
                         f"{range_fix(lo, hi)}")
    return x


def prepare_images(x, obs_mask=None, image_shape: tuple[int, int, int] | None = None,
                   fill_value: float = 0.0, what: str = "x") -> tuple[torch.Tensor, torch.Tensor]:
    """Return (x̃, obs_mask) as float32 N×C×H×W, x̃ in [0, 1] with missing pixels = ``fill_value``.

    - an unsigned integer dtype is scaled by its range (uint8 / 255, uint16 / 65535), bool is 0/1,
      floats must lie in [0, 1]; signed integers and data that fills too little of its dtype to tell
      its scale are refused with the fix (:func:`to_unit_range`); channels-last batches are refused
      with a hint;
    - NaN marks a missing pixel (combined with ``obs_mask`` if both are given);
    - ±inf is an error anywhere; a NaN at a pixel the mask calls observed is an error;
    - ``obs_mask`` must have the image's shape and hold only 0/1 (bool or numeric).
    """
    arr = _to_nchw(_as_array(x, what), what, image_shape)
    if arr.shape[0] == 0:
        raise InputError(f"{what}: empty batch (0 images)")
    t = torch.from_numpy(np.ascontiguousarray(to_unit_range(arr, what)))
    nan = torch.isnan(t)
    if obs_mask is None:
        mask = (~nan).float()
    else:
        m = _to_nchw(_as_array(obs_mask, "obs_mask"), "obs_mask", None)
        if tuple(m.shape) != tuple(t.shape):
            raise InputError(f"obs_mask: shape {tuple(m.shape)} does not match the images' shape {tuple(t.shape)}")
        m = m.astype(np.float32)  # in NumPy: older torch cannot hold every integer dtype a mask may come in
        if np.isnan(m).any() or not np.all((m == 0) | (m == 1)):
            bad = m[~((m == 0) | (m == 1))][:3].tolist()
            raise InputError(f"obs_mask: must be binary (1 = observed, 0 = missing), found values like {bad}")
        mask = torch.from_numpy(np.ascontiguousarray(m))
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
