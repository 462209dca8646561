"""DiEM (Rozet et al., NeurIPS 2024, "Learning diffusion priors from observations by expectation
maximization"): a pixel diffusion prior learnt from incomplete images by Monte-Carlo EM.

1. **Gaussian initialisation.** A Gaussian N(μ, Σ) with Σ = s·I + W Wᵀ (probabilistic PCA of rank
   ``gaussian_rank``) is fitted to the incomplete training images by ``gaussian_iterations`` rounds of
   Monte-Carlo EM, starting from N(0, I): the E-step draws every image's missing pixels from the
   Gaussian posterior given its observed ones — exactly, by Matheron's rule, with the Woodbury
   identity for the observed block (O(pixels · rank) per image) — and the M-step fits PPCA to the
   completed images (Tipping & Bishop: W from the top eigenvectors, s the mean of the other
   eigenvalues).
2. **Laps.** The first lap's completed training set is a draw from the fitted Gaussian's posterior.
   Each lap's M-step trains the pixel diffusion model with the plain (complete-data) denoising loss on
   the completed images, warm-started from the previous lap; the next lap's E-step redraws the missing
   pixels from the posterior of the current model by moment-matching posterior sampling (MMPS: the
   ``pigdm`` conditioner, Tweedie covariance by vector–Jacobian products and ``e_step.cg_steps``
   conjugate-gradient steps), with ``e_step`` its settings. The E-step after the last M-step would not
   change the model and is skipped.

**Deviations** from the paper (and ``francois-rozet/diffusion-priors``), all for a CPU budget: the
Gaussian E-step samples the Gaussian posterior in closed form where the code runs its diffusion
sampler with the Gaussian denoiser (the same law, up to that sampler's error); an E-step may redraw
only a random ``e_step_fraction`` of the training images (the others keep their last draw: an
incremental EM); the network, its ε-parameterisation, the VP-SDE and the sampler are this package's
(the paper: EDM-style denoiser, VE SDE, 256 DDPM steps, tens of laps). DiffPuter (``diffputer``)
differs in three ways: it starts from zero-filled images rather than a Gaussian fit, its E-step
replaces pixels instead of sampling the posterior with MMPS, and it averages several draws (a
posterior-mean estimate) where DiEM keeps one draw (a posterior sample).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import rng
from ..config import constrain
from ..diffusion.conditioners import run_conditioner
from ..diffusion.conditioners.pigdm import PiGDMConfig
from ..training import TrainConfig
from .common import batch_slices, batched, progress_bar, to_model_space, to_pixel_space
from .ddpm import PixelDDPM, PixelDiffusionConfig
from .registry import register


@dataclass
class DiEMConfig(PixelDiffusionConfig):
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2500, batch_size=64, lr=5e-4))  # per lap
    laps: int = 2  # M-steps (the first on the Gaussian's completions)
    gaussian_rank: int = 32  # rank of W in Σ = s·I + W Wᵀ
    gaussian_iterations: int = 8  # Monte-Carlo EM rounds of the Gaussian initialisation
    e_step: PiGDMConfig = field(default_factory=lambda: PiGDMConfig(steps=20, sigma_y=0.01, cg_steps=1))
    e_step_fraction: float = 1.0  # share of the training images an MMPS E-step redraws (the rest keep their last draw)


constrain("DiEMConfig", laps=("range", 1, None), gaussian_rank=("range", 1, None),
          gaussian_iterations=("range", 1, None), e_step_fraction=("range", 0.0, 1.0))


class LowRankGaussian:
    """N(μ, s·I + W Wᵀ) over flattened images, with exact posterior draws given observed pixels."""

    def __init__(self, mean: torch.Tensor, s: float, w: torch.Tensor):
        self.mean, self.s, self.w = mean, float(s), w

    @classmethod
    def standard(cls, dim: int, rank: int) -> "LowRankGaussian":
        return cls(torch.zeros(dim), 1.0, torch.zeros(dim, rank))

    @classmethod
    def fit_ppca(cls, x: torch.Tensor, rank: int) -> "LowRankGaussian":
        """Maximum-likelihood PPCA of complete rows ``x`` (N × D) (Tipping & Bishop 1999)."""
        mean = x.mean(0)
        centred = (x - mean).double()
        cov = centred.T @ centred / len(x)
        vals, vecs = torch.linalg.eigh(cov)  # ascending
        rank = min(rank, x.shape[1] - 1)
        top_vals, top_vecs = vals[-rank:], vecs[:, -rank:]
        s = float((vals.sum() - top_vals.sum()) / (x.shape[1] - rank))
        w = top_vecs * (top_vals - s).clamp_min(0.0).sqrt()
        return cls(mean, max(s, 1e-8), w.float())

    def covariance(self) -> torch.Tensor:
        return self.s * torch.eye(len(self.mean)) + self.w @ self.w.T

    def posterior_sample(self, y: torch.Tensor, mask: torch.Tensor, generator, noise: float = 1e-3) -> torch.Tensor:
        """One draw of x | (x + noise·ε)_observed = y_observed per row (Matheron's rule):
        x̃ ~ N(μ, Σ), then x = x̃ + Σ Mᵀ (M Σ Mᵀ + noise² I)⁻¹ (y − x̃ − noise·ε) on the observed block,
        the inverse by Woodbury: (c I + W_o W_oᵀ)⁻¹ = (I − W_o (c I + W_oᵀ W_o)⁻¹ W_oᵀ)/c, c = s + noise²."""
        n, dim = y.shape
        k = self.w.shape[1]
        prior_draw = (self.mean + self.s**0.5 * rng.randn((n, dim), generator)
                      + rng.randn((n, k), generator) @ self.w.T)
        residual = mask * (y - prior_draw - noise * rng.randn((n, dim), generator))
        c = self.s + noise**2
        w_obs = mask[:, :, None] * self.w  # N × D × k, rows of missing pixels zeroed
        inner = c * torch.eye(k) + torch.einsum("ndk,ndl->nkl", w_obs, w_obs)
        proj = torch.einsum("ndk,nd->nk", w_obs, residual)
        v = (residual - torch.einsum("ndk,nk->nd", w_obs, torch.linalg.solve(inner, proj))) / c
        return prior_draw + self.s * v + (v @ self.w) @ self.w.T


def fit_gaussian(x: torch.Tensor, mask: torch.Tensor, rank: int, iterations: int, generator,
                 batch: int | None = None, progress=None) -> tuple[LowRankGaussian, torch.Tensor]:
    """Monte-Carlo EM for a low-rank Gaussian on incomplete rows (N × D, ``mask`` 1 = observed):
    returns the Gaussian and a last posterior draw of the completed rows. ``batch`` None: 2,000 rows,
    fewer where the Woodbury step's rows × D × rank floats would pass 64 Mi (256 MB: 32×32 RGB images
    at rank 32 take 682 rows; MNIST keeps 2,000, so its draws are unchanged)."""
    if batch is None:
        batch = min(2000, max(1, (64 * 2**20) // (x.shape[1] * rank)))
    def complete(gaussian):  # every row's missing entries drawn from the Gaussian's posterior
        draws = torch.cat([gaussian.posterior_sample(x[s], mask[s], generator) for s in batch_slices(len(x), batch)])
        return mask * x + (1 - mask) * draws

    gaussian = LowRankGaussian.standard(x.shape[1], rank)
    for _ in range(iterations):
        gaussian = LowRankGaussian.fit_ppca(complete(gaussian), rank)
        if progress is not None:
            progress(1)
    return gaussian, complete(gaussian)


@register
class DiEM(PixelDDPM):
    name = "diem"
    config_cls = DiEMConfig
    relative_cost = 4
    impute_modes = ("pigdm", "replacement")
    # the fit's E-steps sample with the prior's sampler and e_step; the imputation knobs are free
    FIT_INDEPENDENT = ("impute",)
    SAMPLED_DURING_FIT = ("sampler",)

    def _fit(self, x, obs_mask, generator, progress, options):
        cfg = self.config
        flat_x, flat_m = to_model_space(x).flatten(1), obs_mask.flatten(1)
        bar = progress_bar(cfg.gaussian_iterations, "diem Gaussian EM", progress)
        gaussian, completed = fit_gaussian(flat_x, flat_m, cfg.gaussian_rank, cfg.gaussian_iterations, generator,
                                           progress=bar.update)
        bar.close()
        completed = to_pixel_space(completed).view_as(x).clamp(0, 1)
        self.meta.update(gaussian_fit={"rank": cfg.gaussian_rank, "s": gaussian.s,
                                       "iterations": cfg.gaussian_iterations})
        raw, infos = self.net, []
        for lap in range(cfg.laps):
            self.net, info = self._train_net(completed, None, generator, progress, f"diem M-step {lap + 1}", options,
                                             model=raw, stage=f"m_step{lap + 1}")
            infos.append(info)
            if lap < cfg.laps - 1:
                with torch.no_grad():  # MMPS enables gradients for its own vector–Jacobian products
                    completed = self.e_step(completed, x, obs_mask, generator, progress)
        self.meta.update(em_fits=infos)

    def e_step(self, completed, x, obs_mask, generator, progress):
        """Redraw the missing pixels of (a random share of) the incomplete training images from the
        current model's posterior by MMPS; observed pixels never change."""
        incomplete = (obs_mask.flatten(1) < 1).any(1).nonzero().squeeze(1)
        if len(incomplete) == 0:
            return completed
        take = round(self.config.e_step_fraction * len(incomplete))
        if take == 0:
            return completed
        rows = incomplete[rng.randperm(len(incomplete), generator)[:take]] if take < len(incomplete) else incomplete
        cfg = self.config.e_step
        steps = cfg.steps or self.config.sampler.steps
        prior = self._diffusion_prior(generator)

        def one_batch(xo, m, tick):
            u = run_conditioner("pigdm", prior, self._observation(xo, m), generator, cfg, steps, tick)
            return self._to_pixels(u)

        draw = batched(one_batch, x[rows], obs_mask[rows], self.config.sampler.batch_size, self.device,
                       "diem E-step (MMPS)", progress, steps)
        completed = completed.clone()
        completed[rows] = obs_mask[rows] * x[rows] + (1 - obs_mask[rows]) * draw.clamp(0, 1)
        return completed


__all__ = ["DiEM", "DiEMConfig", "LowRankGaussian", "fit_gaussian"]
