"""Reference imputers (docs/method.md): the floor (``mean``) and the β-VAE without a diffusion prior
(``vae``: encoder mean → decoder, or ``map`` decoder inversion) — the honest control for what the
latent diffusion prior adds."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .base import Method
from .common import batched
from .registry import register
from .result import Cost
from .vae_ops import VAE_INFERENCE_ONLY, Autoencoded, VAEConfig, build_vae, encode_means, fit_vae, map_latents


def observed_pixel_mean(x: torch.Tensor, obs_mask: torch.Tensor) -> torch.Tensor:
    """C×H×W mean of each pixel's observed values over the images; the overall observed mean where a
    pixel was never observed. What ``mean`` imputes, and the classical baselines' fill for an image
    with nothing observed."""
    counts = obs_mask.sum(0)
    overall = (x * obs_mask).sum() / obs_mask.sum()
    return torch.where(counts > 0, (x * obs_mask).sum(0) / counts.clamp_min(1), overall)


@dataclass
class MeanConfig:
    fill_value: float = 0.0


@register
class MeanImputer(Method):
    """Per-pixel mean over the observed training values (global mean where a pixel was never seen)."""

    name = "mean"
    config_cls = MeanConfig
    unobserved_fill = "with the per-pixel training means"
    generative = False
    stochastic = False
    relative_cost = 0

    def _build(self, image_shape):
        self.pixel_mean = torch.zeros(image_shape)

    def _parts(self):
        return {"pixel_mean": self.pixel_mean}

    def _fit(self, x, obs_mask, generator, progress, options):
        self.pixel_mean = observed_pixel_mean(x, obs_mask)

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        return self.pixel_mean.expand_as(x).clone(), Cost()


@dataclass
class VAEOnlyConfig:
    fill_value: float = 0.0
    vae: VAEConfig = field(default_factory=VAEConfig)
    batch_size: int = 500


@register
class VAEImputer(Autoencoded, Method):
    """The robust β-VAE alone. ``encoder``: decode the encoder mean; ``map``: optimise the latent from
    the encoder mean to fit the observed pixels (``vae.map_steps`` Adam steps), then decode."""

    name = "vae"
    config_cls = VAEOnlyConfig
    unobserved_fill = "by decoding the encoder's latent for an empty image (it carries no information about them)"
    generative = False  # with β = 1e-6 the aggregate posterior is far from N(0, I): prior samples are noise
    stochastic = False  # encoder mean and MAP decoder inversion are deterministic
    impute_modes = ("encoder", "map")
    # decoder inversion's settings (the ones the shared β-VAE cache ignores too) and its batching
    FIT_INDEPENDENT = (*(f"vae.{k}" for k in VAE_INFERENCE_ONLY), "batch_size")

    def _build(self, image_shape):
        self.vae = build_vae(self.config.vae, image_shape).to(self.device)

    def _parts(self):
        return {"vae": self.vae}

    def _fit(self, x, obs_mask, generator, progress, options):
        self.vae, info = fit_vae(self.vae, self.config.vae, x, obs_mask, generator, progress, self.device,
                                 options.cache_dir, fill_value=self.config.fill_value, **options.train_options("vae"))
        self.meta.update(vae_fit=info)

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        """Encoder mean → decoder (one pass of each), or ``map``: ``map_steps`` more decoder passes,
        each with a backward pass, from there."""
        cfg = self.config.vae

        def one_batch(xo, m, tick):
            z = encode_means(self.vae, xo, m, self.device)
            if mode == "map":
                z = map_latents(self.vae, xo, m, z.to(self.device), cfg.map_steps, cfg.map_lr)
            tick(1)
            with torch.no_grad():
                return self.vae.decode(z.to(self.device))

        out = batched(one_batch, x, obs_mask, self.config.batch_size, self.device, f"vae impute ({mode})",
                      progress and mode == "map")
        if mode == "map":
            return out, Cost(steps=cfg.map_steps, nfe=1 + cfg.map_steps, backward_nfe=cfg.map_steps)
        return out, Cost(steps=1, nfe=1)
