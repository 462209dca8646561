"""Classical inpainting baselines (docs/method.md, "Classical baselines"): no network, nothing learnt
but a fallback, each missing pixel filled from the observed pixels of its own image.

They answer the question every learnt imputer has to face: does it beat interpolating the image's
own neighbourhood? On natural-photo patches a 3×3 average of the observed neighbours was reported
to beat LDMiss, so the benchmark needs these rows beside the learnt methods.

* ``biharmonic``: scikit-image's biharmonic inpainting (Damelin & Hoang 2018), per image — the
  smoothest surface through the observed pixels (exact for any linear or quadratic intensity).
* ``neighbours``: the iterated neighbour mean ("onion peel", a normalised convolution): each missing
  pixel within ``radius`` of a known pixel takes the mean of the known pixels in its window, the
  filled pixels count as known in the next round, until none is missing. Vectorised over the batch.

Both are deterministic and cost no network evaluation. The fit learns one thing: the per-pixel
mean of the observed training values (what ``mean`` imputes), the fill for an image — or a channel
of it — with no observed pixel, which no interpolation can fill.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import constrain
from .common import batched, progress_bar
from .registry import register
from .result import Cost
from .simple import MeanImputer


class _Classical(MeanImputer):
    """What both baselines share: no sampling, one draw, and a fit that only learns the fallback
    fill for planes with nothing observed (so ``fit`` stays meaningful and a model saves and loads
    like any other)."""

    # the attributes (non-generative, deterministic, free) and the fit (the per-pixel observed mean,
    # stored as ``pixel_mean``) are the ``mean`` imputer's; the subclasses replace its imputation


@dataclass
class BiharmonicConfig:
    # scikit-image's option: solve each connected hole on its own. Less memory for large images with
    # a few large holes; slower for scattered (MCAR) holes, and holes closer than the stencil's
    # reach (2 pixels) no longer share one solve, so the fill may differ slightly.
    split_into_regions: bool = False


def biharmonic_fill(image: np.ndarray, missing: np.ndarray, fallback: np.ndarray,
                    split_into_regions: bool = False) -> np.ndarray:
    """One C×H×W image (float64) with its ``missing`` pixels (C×H×W bool) inpainted. Channels that
    share a mask are solved together (``channel_axis``: one sparse system, one right-hand side per
    channel); where the channels' masks differ, each channel is solved with its own. A channel with
    nothing observed takes ``fallback`` (C×H×W)."""
    from skimage.restoration import inpaint_biharmonic  # only this method needs scikit-image

    out = image.copy()
    if (missing == missing[:1]).all():
        groups = [(slice(None), missing[0])]
    else:
        groups = [(slice(c, c + 1), missing[c]) for c in range(image.shape[0])]
    for channels, hole in groups:
        if not hole.any():
            continue
        if hole.all():
            out[channels] = fallback[channels]
            continue
        # a writable copy of the mask: scikit-image's Cython rejects read-only (e.g. broadcast) arrays
        filled = inpaint_biharmonic(np.moveaxis(out[channels], 0, -1), np.array(hole), channel_axis=-1,
                                    split_into_regions=split_into_regions)
        out[channels] = np.moveaxis(filled, -1, 0)
    return out


@register
class Biharmonic(_Classical):
    """Biharmonic inpainting of each image (scikit-image's ``inpaint_biharmonic``)."""

    name = "biharmonic"
    config_cls = BiharmonicConfig
    FIT_INDEPENDENT = ("split_into_regions",)  # the fit learns the fallback only

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        """One sparse solve per image on the CPU (float64, scikit-image's clip to the observed range)."""
        xs, missing = x.double().cpu().numpy(), (obs_mask == 0).cpu().numpy()
        fallback = self.pixel_mean.double().cpu().numpy()
        out = np.empty_like(xs)
        bar = progress_bar(len(xs), "biharmonic impute", progress)
        try:
            for i in range(len(xs)):
                out[i] = biharmonic_fill(xs[i], missing[i], fallback, self.config.split_into_regions)
                bar.update(1)
        finally:
            bar.close()
        return torch.from_numpy(out).float(), Cost()


@dataclass
class NeighboursConfig:
    radius: int = 1  # the window is (2·radius + 1)² pixels: 1 = the 3×3 neighbours
    batch_size: int = 1000  # images filled at once (memory only: the fill is per image)


constrain("NeighboursConfig", radius=("range", 1, None), batch_size=("range", 1, None))


def neighbour_fill(x: torch.Tensor, obs_mask: torch.Tensor, fallback: torch.Tensor,
                   radius: int = 1) -> tuple[torch.Tensor, int]:
    """(filled N×C×H×W, rounds): the known pixels' values kept; in each round every unknown pixel
    with a known pixel in its (2·radius + 1)² window takes their mean, and joins the known ones.
    Each channel of each image is filled from itself; one with no observed pixel takes ``fallback``
    (C×H×W). A hole of Chebyshev depth d fills in ⌈d / radius⌉ rounds, so the loop ends."""
    n, c = x.shape[:2]
    known = obs_mask > 0
    empty = ~known.flatten(2).any(-1)[..., None, None]  # N×C×1×1: planes with nothing observed
    values = torch.where(known, x, torch.where(empty, fallback.to(x), torch.zeros_like(x)))
    known = known | empty
    window = torch.ones(c, 1, 2 * radius + 1, 2 * radius + 1, dtype=x.dtype, device=x.device)
    rounds = 0
    while not known.all():
        weight = known.to(x.dtype)
        # zero padding: outside the image counts as neither known nor a value
        total = F.conv2d(values * weight, window, padding=radius, groups=c)
        count = F.conv2d(weight, window, padding=radius, groups=c)
        reached = ~known & (count > 0.5)
        values = torch.where(reached, total / count.clamp_min(1), values)
        known = known | reached
        rounds += 1
    return values, rounds


@register
class Neighbours(_Classical):
    """Iterated mean of the known neighbours (push-in fill from the observed pixels)."""

    name = "neighbours"
    config_cls = NeighboursConfig
    FIT_INDEPENDENT = ("radius", "batch_size")  # the fit learns the fallback only

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        """Cost: ``steps`` = fill rounds (the most any batch needed); each round is two small
        convolutions, no network."""
        rounds = [0]

        def one_batch(xb, mb, tick):
            out, k = neighbour_fill(xb, mb, self.pixel_mean, self.config.radius)
            rounds[0] = max(rounds[0], k)
            tick(1)
            return out

        out = batched(one_batch, x, obs_mask, self.config.batch_size, self.device, "neighbours impute", progress)
        return out, Cost(steps=rounds[0])


REFINEMENTS = ("none", "neighbours", "biharmonic")


def refine_residual(decoded: torch.Tensor, x: torch.Tensor, obs_mask: torch.Tensor, how: str) -> torch.Tensor:
    """A learnt imputation refined in pixel space by the observed pixels: the residual x − decoded is
    known on the observed pixels; interpolate it into the missing ones (``how``: the iterated
    neighbour mean or biharmonic inpainting) and add it to the decoded image there.

    Why: a decoder reproduces a photo's structure but not its exact local levels, which the observed
    neighbours of a missing pixel pin down; interpolating the *residual* keeps the decoder's edges
    and textures and corrects its local bias. If the decoded image is off by a smooth field (an
    offset, a gradient), the refined one is exact; if the decoder adds nothing, the result is the
    interpolation of the image itself."""
    if how == "none":
        return decoded
    m = obs_mask.to(decoded)
    residual = (x.to(decoded) - decoded) * m
    zero = torch.zeros_like(decoded[0])
    if how == "neighbours":
        filled, _ = neighbour_fill(residual, m, zero)
    elif how == "biharmonic":
        missing = (m == 0).cpu().numpy()
        r = residual.double().cpu().numpy()
        filled = torch.from_numpy(np.stack([biharmonic_fill(r[i], missing[i], np.zeros_like(r[i]))
                                            for i in range(len(r))])).to(decoded)
    else:
        raise ValueError(f"refine must be one of {REFINEMENTS}, got {how!r}")
    return (decoded + (1 - m) * filled).clamp(0, 1)
