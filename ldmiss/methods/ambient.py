"""Ambient Diffusion (Daras et al., NeurIPS 2023, "Ambient Diffusion: Learning Clean Distributions
from Corrupted Data") for pixel images: a denoiser that never needs a complete image.

Training: each training image is seen through its own mask A (its observed pixels). Every step
hides a further fraction ``delta`` of them (B ~ Bernoulli(1 − δ) per pixel, Ã = A ⊙ B), feeds the
network the further-masked noisy image Ã ⊙ x_t *and* Ã, and scores its estimate x̂₀ on the
*originally* observed pixels A:

    L = E_{t, ε, B} λ(t) ‖A ⊙ (x̂₀(Ã ⊙ x_t, Ã, t) − x₀)‖² / Σ A.

The minimiser is E[x₀ | Ã ⊙ x_t, Ã] on every pixel, observed or not (the paper's Theorem): to predict
the pixels B hid, the network must learn how pixels depend on each other, which it can check on
pixels that A observed. The naive masked loss (MissDiff, ``ddpm``) gives the network x_t at every
pixel, so it can score well on observed pixels without learning that.

Preconditioning and weighting are EDM's (Karras et al. 2022), as in the official code: with
σ_e = σ_t/α_t and the VE input y = x_t/α_t, x̂₀ = c_skip·Ã⊙y + c_out·F(c_in·Ã⊙y, Ã, t), c_skip =
σ_d²/(σ_e² + σ_d²), c_out = σ_e σ_d/√(σ_e² + σ_d²), c_in = 1/√(σ_e² + σ_d²), λ = (σ_e² + σ_d²)/(σ_e σ_d)²,
log-normal σ_e (our ``logsnr`` time distribution, λ ~ N(2.4, 2.4²), is EDM's P_mean = −1.2,
P_std = 1.2). **Deviation**: a hidden pixel (Ã = 0) takes the parameterisation of infinite noise
(c_skip = 0, c_out = σ_d), so its estimate need not grow as 1/σ_e at low noise; the official code
applies the low-noise c_out to hidden pixels too. Training times are drawn as in ``loss.time_dist``.

Sampling (the paper's "fixed mask" sampler): each chain draws one mask Ã with the training
survival rate ((1 − r)(1 − δ), r the training missing fraction) and keeps it for every step; the
denoiser's estimate gives the score (α x̂₀ − x_t)/σ², which drives any of our samplers (the paper
uses EDM's deterministic Heun; ``sampler.method`` chooses here). ``sampling_masks = "training"``
instead gives each chain a random training image's mask further masked by δ — the law of the
network's training inputs under any mechanism (the paper's masks are per-pixel MCAR or boxes, and
its sampler draws them from that known law). **Deviations**: B is redrawn at every training step
(the official code fixes one B per image, seeded by its index); the VP-SDE of this package
replaces EDM's VE schedule; one sampling mask per chain (the paper's default).
Imputation: every conditioner, on the same fixed-mask score (the mask is drawn per row of a batch).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import rng
from ..config import constrain, to_dict
from ..diffusion import VPSDE, LossConfig, Prior
from ..diffusion.sde import _bcast
from ..nets import build_eps_net
from ..nets.precision import autocast
from .ddpm import PixelDDPM, PixelDiffusionConfig
from .registry import register


@dataclass
class AmbientConfig(PixelDiffusionConfig):
    # EDM's log-normal noise levels and σ_d (loss.sigma_data, 0.5 for data in [−1, 1]); ``loss.prediction``
    # is not read (Ambient's own masked EDM preconditioning replaces it)
    loss: LossConfig = field(default_factory=lambda: LossConfig(time_dist="logsnr"))
    delta: float = 0.1  # further corruption: the fraction of observed pixels hidden from the network each step
    # weight of the further-hidden pixels' error: "unit" = 1/σ_d², the unit effective weight EDM gives
    # visible pixels (as in the official code, where hidden pixels share their c_out); "lambda" = EDM's
    # λ(σ) as on every pixel, whose effective weight grows as 1 + σ_d²/σ_e² at low noise. Measured at
    # r = 0.5 (results/ablations/ambient_hidden_weight): sample FID 133 ("unit") vs 344 ("lambda")
    hidden_weight: str = "unit"
    # the mask each sampling chain's network sees, kept for the whole solve: "iid" keeps every pixel
    # with the training survival (1 − r)(1 − δ) (the paper's sampler, for its per-pixel MCAR masks);
    # "training" takes a random training image's mask, further masked by δ — the law of the inputs
    # the network was trained on, whatever the mechanism (blocks, halves, MAR, MNAR)
    sampling_masks: str = "iid"


SAMPLING_MASKS = ("iid", "training")
MASK_BANK = 512  # training masks kept with the model for sampling_masks = "training"

constrain("AmbientConfig", delta=("range", 0.0, 0.95), hidden_weight=("choices", ("lambda", "unit")),
          sampling_masks=("choices", SAMPLING_MASKS))


def edm_coefficients(sde, t: torch.Tensor, sigma_data: float):
    """(c_skip, c_out, c_in, λ) at VP times t, with σ_e = σ_t/α_t (per sample)."""
    sigma_e = sde.sigma(t) / sde.alpha(t)
    total = sigma_e**2 + sigma_data**2
    return (sigma_data**2 / total, sigma_e * sigma_data / total.sqrt(), 1.0 / total.sqrt(),
            total / (sigma_e * sigma_data) ** 2)


def ambient_denoise(net, sde, x_t: torch.Tensor, mask: torch.Tensor, t: torch.Tensor, sigma_data: float,
                    precision: str = "fp32") -> torch.Tensor:
    """x̂₀ = E[x₀ | mask ⊙ x_t, mask] from the network: it sees the masked input and the mask only."""
    c_skip, c_out, c_in, _ = (_bcast(c, x_t) for c in edm_coefficients(sde, t, sigma_data))
    y = mask * x_t / _bcast(sde.alpha(t), x_t)  # VE coordinates, hidden pixels zeroed
    with autocast(precision, x_t.device):
        out = net(torch.cat([c_in * y, mask], dim=1), t).float()
    # a hidden pixel is parameterised as at infinite noise (c_skip → 0, c_out → σ_d)
    return mask * (c_skip * y + c_out * out) + (1.0 - mask) * sigma_data * out


def ambient_loss(net, sde, loss_cfg: LossConfig, delta: float, sigma_data: float, precision: str = "fp32",
                 hidden_weight: str = "unit"):
    """The training closure ``loss(x0, obs_mask, generator)`` for :func:`ldmiss.training.train`;
    ``hidden_weight``: see :class:`AmbientConfig`."""
    def loss(x0: torch.Tensor, obs_mask: torch.Tensor, generator) -> torch.Tensor:
        t = sde.sample_time(x0.shape[0], generator, device=x0.device, dist=loss_cfg.time_dist,
                            logsnr_mean=loss_cfg.logsnr_mean, logsnr_std=loss_cfg.logsnr_std)
        x_t = sde.marginal(x0, t, rng.randn_like(x0, generator))
        keep = (rng.rand(obs_mask[:, :1].shape, generator, x0.device) >= delta).to(obs_mask.dtype)
        further = obs_mask * keep  # Ã = A ⊙ B (one B per pixel, shared by its channels)
        x0_hat = ambient_denoise(net, sde, x_t, further, t, sigma_data, precision)
        weight = _bcast(edm_coefficients(sde, t, sigma_data)[3], x0)
        if hidden_weight == "unit":  # visible: λ (unit effective weight); further-hidden: 1/σ_d² (the same)
            weight = further * weight + (obs_mask - further) / sigma_data**2
        else:
            weight = obs_mask * weight
        return (weight * (x0_hat - x0) ** 2).sum() / obs_mask.sum().clamp_min(1.0)
    return loss


class FixedMaskScore:
    """The sampling score of an Ambient denoiser for one solve: each row keeps one random mask for
    the whole solve — drawn when the solve first asks, from its own generator, and redrawn only when
    the number of rows changes. A mask keeps each pixel with probability ``survival`` (``bank``
    None), or is a random row of ``bank`` (training masks) with a further δ of its pixels hidden."""

    def __init__(self, net, sde, shape, survival: float, sigma_data: float, precision: str, generator,
                 bank: torch.Tensor | None = None, delta: float = 0.0):
        self.net, self.sde, self.shape, self.survival = net, sde, tuple(shape), survival
        self.sigma_data, self.precision, self.bank, self.delta = sigma_data, precision, bank, delta
        self.generator = generator if generator is not None else rng.generator(0)
        self.mask: torch.Tensor | None = None

    def masks_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is None or self.mask.shape[0] != x.shape[0] or self.mask.device != x.device:
            n, (c, h, w) = x.shape[0], self.shape
            if self.bank is None:
                keep = (rng.rand((n, 1, h, w), self.generator, x.device) < self.survival).to(x.dtype)
                self.mask = keep.expand(n, c, h, w)
            else:
                rows = rng.randint(0, len(self.bank), (n,), self.generator)
                further = (rng.rand((n, 1, h, w), self.generator, x.device) >= self.delta).to(x.dtype)
                self.mask = self.bank[rows].to(x.device, x.dtype) * further
        return self.mask

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0_hat = ambient_denoise(self.net, self.sde, x, self.masks_for(x), t, self.sigma_data, self.precision)
        a, s = _bcast(self.sde.alpha(t), x), _bcast(self.sde.sigma(t), x)
        return (a * x0_hat - x) / s**2


@register
class AmbientDiffusion(PixelDDPM):
    name = "ambient"
    config_cls = AmbientConfig
    # relative_cost, impute_modes and FIT_INDEPENDENT are the DDPM's: training reads the network,
    # schedule, δ and loss (σ_d included) only
    LEGACY_KEYS = {**PixelDDPM.LEGACY_KEYS, "sigma_data": "loss.sigma_data"}
    FIT_INDEPENDENT = (*PixelDDPM.FIT_INDEPENDENT, "sampling_masks")  # the fit keeps its mask bank either way
    OPTIONAL_PARTS = ("mask_bank",)  # not in models saved before sampling_masks existed

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        from ..config import ConfigError
        if config.eps_net != "unet":
            raise ConfigError(f"{cls.name}.eps_net: Ambient Diffusion needs the mask as an input channel: 'unet' only")

    def _build(self, image_shape):
        self.net = build_eps_net("unet", image_shape, cond_channels=image_shape[0], **self.config.net).to(self.device)
        self.sde = VPSDE(**to_dict(self.config.sde))
        self.observed = torch.ones(())  # the training images' observed fraction (sampling masks' survival)
        # training masks for sampling_masks = "training" (uint8; all zero = none kept, an older model)
        self.mask_bank = torch.zeros((MASK_BANK, *image_shape), dtype=torch.uint8)

    def _parts(self):
        return {"net": self.net, "observed": self.observed, "mask_bank": self.mask_bank}

    def training_loss(self, model, masked: bool = True):
        c = self.config
        return ambient_loss(model, self.sde, c.loss, c.delta, c.loss.sigma_data, c.precision, c.hidden_weight)

    def _fit(self, x, obs_mask, generator, progress, options):
        self.observed = obs_mask[:, :1].mean().reshape(())
        rows = torch.linspace(0, len(obs_mask) - 1, MASK_BANK).round().long()  # evenly spaced: no draw, the
        self.mask_bank = (obs_mask[rows] > 0.5).to(torch.uint8)  # training stream stays as it was
        self.net, info = self._train_net(x, obs_mask, generator, progress, "ambient", options)
        self.meta.update(net_fit=info)

    def sampling_survival(self) -> float:
        """(1 − r)(1 − δ): the share of pixels the network saw in training, kept by each sampling mask."""
        return float(self.observed) * (1.0 - self.config.delta)

    def _score(self, generator=None):
        bank = None
        if self.config.sampling_masks == "training":
            if not self.mask_bank.any():
                from ..errors import UsageError
                raise UsageError(f"{self.name}: this model was saved without its training masks; "
                                 "use sampling_masks = 'iid' (or refit)")
            bank = self.mask_bank
        return FixedMaskScore(self.net, self.sde, self.image_shape, self.sampling_survival(), self.config.loss.sigma_data,
                              self.config.precision, generator, bank, self.config.delta)

    def _diffusion_prior(self, generator=None) -> Prior:
        c = self.config.sampler
        return Prior(self._score(generator), self.sde, self.image_shape, c.method, c.grid, self.device)


__all__ = ["AmbientConfig", "AmbientDiffusion", "FixedMaskScore", "ambient_denoise", "ambient_loss", "edm_coefficients"]
