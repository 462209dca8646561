"""The evaluation of one fitted run: one function per metric, registered, run in order.

Each metric takes the :class:`RunContext` (the fitted method, the protocol's data for the seed, the
FID reference) and returns a JSON-able dict, or None when it does not apply to the method (e.g. no
sampling for a non-generative method, no floors without an autoencoder). Every FID is read beside
floors that say what a perfect model would score:

- ``metric_floor``: real test images outside the evaluated set, as many, against the same reference;
- ``decoder_floor`` (autoencoders): the evaluated images with their missing pixels filled by the
  decoder's best fit to their true values (a latent search that knows the answer) — its FID/IS and
  its MSE/PSNR/SSIM on the missing pixels: no imputation that decodes a latent can do better;
- ``prior_target`` (autoencoders): decode(the prior's training latents) of N incomplete training
  images — their encoder means, or with LDMiss's latent EM an E-step's draws — the
  distribution the latent prior is trained to match; ``prior_gap`` = sample FID ÷ target FID;
- ``memorization``: nearest-neighbour distance of the samples to training images ÷ to held-out ones.

A dataset without a metric network (the user's own data) has no reference (``ref`` None): its runs
get no FID, IS, metric floor or memorisation check, and are scored by MSE, PSNR and SSIM on the
missing pixels, which every run records.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..methods import Method
from ..metrics import (
    FIDReference,
    coverage,
    crps,
    energy_score,
    inception_score,
    memorization_ratio,
    missing_mse,
    missing_psnr,
    missing_ssim,
    quantile_crps,
)
from ..missing import apply_mask
from .config import ExperimentConfig
from .protocol import stream_seed


@dataclass
class RunContext:
    """Everything a metric may read about one fitted run (built after the fit)."""

    cfg: ExperimentConfig
    method: Method  # fitted
    rate: float
    seed: int
    x_train: torch.Tensor  # complete training images (the model saw them masked)
    m_train: torch.Tensor
    x_test: torch.Tensor
    m_test: torch.Tensor
    held_out: torch.Tensor
    ref: FIDReference | None  # None: the dataset has no metric network (no FID/IS)
    timings: dict = field(default_factory=dict)
    examples: dict = field(default_factory=dict)
    # 1 where a pixel is not scored (the metrics score where it is 0); None: the test mask (complete
    # test images). Data with missing pixels of its own scores only pixels it has and the mask hides.
    m_unscored: torch.Tensor | None = None
    _samples: np.ndarray | None = field(default=None, repr=False)

    @property
    def m_score(self) -> torch.Tensor:
        """The mask the pixel metrics read: 0 = scored."""
        return self.m_test if self.m_unscored is None else self.m_unscored

    def samples(self) -> np.ndarray:
        """The run's ``n_eval`` unconditional samples, drawn once (timed as ``sample_seconds``)
        whichever metric asks first, so no metric depends on another having run."""
        if self._samples is None:
            t0 = time.perf_counter()
            self._samples = self.method.sample(self.cfg.n_eval, seed=stream_seed(self.seed, "sample", self.rate),
                                               progress=False)
            self.timings["sample_seconds"] = time.perf_counter() - t0
            self.examples["samples"] = self._samples[:self.cfg.grid]
        return self._samples

    def quality(self, images) -> dict:
        """FID and IS of ``images`` (just their number without a metric network)."""
        if self.ref is None:
            return {"n": len(images)}
        is_mean, _ = inception_score(images, dataset=self.ref.dataset)
        return {"fid": self.ref.fid(images), "is": is_mean, "n": len(images)}

    def pixels(self, images) -> dict:
        """MSE, PSNR and SSIM of ``images`` on the scored pixels (the test mask's missing ones, less any
        the data itself lacks)."""
        return {"mse": missing_mse(images, self.x_test, self.m_score),
                "psnr": missing_psnr(images, self.x_test, self.m_score),
                "ssim": missing_ssim(images, self.x_test, self.m_score)}

    def has(self, need: str) -> bool:
        """Whether this run offers ``need`` (see :data:`NEEDS`)."""
        return NEEDS[need](self)


# What a metric may require of a run; a metric that declares needs the run lacks is not computed.
NEEDS: dict[str, Callable[[RunContext], bool]] = {
    "generative": lambda ctx: ctx.method.generative,  # it samples
    "autoencoder": lambda ctx: ctx.method.autoencoder,  # it reconstructs
    "prior_target": lambda ctx: getattr(ctx.method, "has_prior_target", False),  # a latent prior's training set
    "reference": lambda ctx: ctx.ref is not None,  # the dataset has a metric network (FID, IS)
    "held_out": lambda ctx: len(ctx.held_out) >= 2,  # real images outside the evaluated set
}


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[RunContext], dict]
    needs: tuple[str, ...] = ()


METRICS: dict[str, Metric] = {}


def metric(name: str, needs: tuple[str, ...] = ()):
    """Register ``fn(ctx) -> dict`` as the metric ``name``, computed for every run that has ``needs``."""
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"metric {name!r}: unknown needs {unknown}; choose from {sorted(NEEDS)}")

    def register(fn):
        METRICS[name] = Metric(name, fn, tuple(needs))
        return fn
    return register


@metric("metric_floor", needs=("reference", "held_out"))
def metric_floor(ctx: RunContext) -> dict:
    """Kept on the reference object, which every run of a process shares: computed once per seed."""
    key = ("metric_floor", ctx.cfg.dataset, ctx.seed, ctx.cfg.n_eval, len(ctx.held_out))
    if key not in ctx.ref.cache:
        ctx.ref.cache[key] = ctx.quality(ctx.held_out.numpy())
    return dict(ctx.ref.cache[key])


@metric("sample", needs=("generative",))
def sample_quality(ctx: RunContext) -> dict:
    return ctx.quality(ctx.samples())


@metric("memorization", needs=("generative", "reference", "held_out"))
def memorization(ctx: RunContext) -> dict:
    return memorization_ratio(ctx.samples(), ctx.x_train[:len(ctx.held_out)], ctx.held_out, ctx.ref.dataset)


@metric("decoder_floor", needs=("autoencoder",))
def decoder_floor(ctx: RunContext) -> dict:
    """The test images with their missing pixels filled by the decoder's best fit to the true pixels:
    a bound on every imputation that decodes a latent (LDMiss, vae), unlike decode(encode(complete
    image)) — the 0.1 reconstruction floor — which the masked-trained encoder never saw, and which
    scored above the imputations it claimed to bound (0.0128 against 0.0038 on photo patches)."""
    floor = ctx.method.decoder_floor(ctx.x_test.numpy(), ctx.m_test.numpy())
    ctx.examples["decoder_floor"] = floor[:ctx.cfg.grid]
    return {**ctx.quality(floor), **ctx.pixels(floor)}


@metric("prior_target", needs=("autoencoder", "prior_target"))
def prior_target(ctx: RunContext) -> dict:
    n = min(ctx.cfg.n_eval, len(ctx.x_train))
    x, m = ctx.x_train[:n], ctx.m_train[:n]
    return ctx.quality(ctx.method.prior_target(apply_mask(x, m).numpy(), m.numpy()))


COVERAGE_LEVEL = 0.9


def imputation_quality(draws: np.ndarray, mean: np.ndarray, x_test, m_test) -> dict:
    """What D draws say beyond the first: MSE of their mean and, for D ≥ 2, the coverage of the
    central 90% interval, the per-pixel CRPS, CSDI's normalised quantile CRPS and the energy score on
    missing pixels (metrics/uncertainty.py). A deterministic imputer's D identical draws score
    coverage ≈ 0 and CRPS = its mean absolute error, as they should."""
    out = {"mse_mean": missing_mse(mean, x_test, m_test)}
    if draws is not None and len(draws) >= 2:
        out.update(coverage90=coverage(draws, x_test, m_test, COVERAGE_LEVEL), crps=crps(draws, x_test, m_test),
                   quantile_crps=quantile_crps(draws, x_test, m_test), energy=energy_score(draws, x_test, m_test))
    return out


def calibrated_intervals(ctx: RunContext, mode: str, result) -> dict:
    """Coverage and mean width of the 50% and 90% intervals, from the draws (raw) and after a
    split-conformal calibration on ``calibration_images`` training images (ldmiss/calibration.py)."""
    from ..metrics.uncertainty import interval_coverage
    t0 = time.perf_counter()
    ctx.method.calibrate(apply_mask(ctx.x_train, ctx.m_train), ctx.m_train, images=ctx.cfg.calibration_images,
                         draws=ctx.cfg.draws, mode=mode, seed=stream_seed(ctx.seed, "impute", ctx.rate) + 1)
    ctx.timings[f"calibrate_{mode}_seconds"] = time.perf_counter() - t0
    result.calibration = ctx.method.calibration(mode)
    out = {}
    for level in (0.5, 0.9):
        tag = f"{round(100 * level)}"
        for kind, calibrated in (("", False), ("_cal", True)):
            lo, hi = result.interval(level, calibrated=calibrated)
            cov, width = interval_coverage(lo, hi, ctx.x_test, ctx.m_score)
            out[f"coverage{tag}{kind}"], out[f"width{tag}{kind}"] = cov, width
    return out


@metric("impute")
def imputation(ctx: RunContext) -> dict:
    """Per mode: single-draw MSE (``mse``), FID/IS of the single draws (a posterior mean is blurred by
    construction, so it is not scored), MSE of the mean of ``draws`` draws (``mse_mean``), coverage
    and CRPS when draws ≥ 2, and, for the diffusion methods, the network evaluations per image of
    one draw (``nfe``)."""
    out = {}
    x_obs = apply_mask(ctx.x_test, ctx.m_test)
    for mode in ctx.cfg.modes_for(ctx.method):
        t0 = time.perf_counter()
        result = ctx.method.impute(x_obs, ctx.m_test, draws=ctx.cfg.draws, mode=mode,
                                   seed=stream_seed(ctx.seed, "impute", ctx.rate), progress=False)
        ctx.timings[f"impute_{mode}_seconds"] = time.perf_counter() - t0
        single = result.first
        out[mode] = {**ctx.quality(single), **ctx.pixels(single),
                     **imputation_quality(result.draws, result.mean, ctx.x_test, ctx.m_score), "draws": ctx.cfg.draws}
        if ctx.cfg.calibration_images and result.draws is not None:
            out[mode].update(calibrated_intervals(ctx, mode, result))
        if ctx.method.conditionable:
            out[mode]["nfe"] = result.cost.nfe
        ctx.examples[f"impute_{mode}"] = single[:ctx.cfg.grid]
    return out


def evaluate(ctx: RunContext) -> dict:
    """Every registered metric whose needs the run meets, in registration order, plus the derived
    prior gap."""
    results = {}
    for m in METRICS.values():
        if not all(ctx.has(need) for need in m.needs):
            continue
        t0 = time.perf_counter()
        results[m.name] = m.fn(ctx)
        ctx.timings.setdefault(f"{m.name}_eval_seconds", time.perf_counter() - t0)
    if "fid" in results.get("sample", {}) and "fid" in results.get("prior_target", {}):
        results["prior_gap"] = results["sample"]["fid"] / max(results["prior_target"]["fid"], 1e-12)
    return results
