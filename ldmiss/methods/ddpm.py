"""Pixel-space DDPM trained with the MissDiff masked loss (docs/method.md).

The network sees zero-imputed images (in [−1, 1] model space the fill 0.0 becomes −1) but the loss
only scores observed pixels. Imputation by any conditioner (methods/conditioned.py); the sweep
evaluates ``replacement`` (observed pixels re-noised into x_t each step; optional RePaint
resampling) and ``guidance`` (the LDMiss self-guidance recipe with D = the map to pixels).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import constrain, to_dict
from ..diffusion import VPSDE, LossConfig, Observation, Prior, SamplerConfig, SDEConfig, conditioner_configs, sample
from ..nets import build_eps_net
from ..nets.precision import PRECISIONS
from ..training import TrainConfig, train
from .base import Method
from .common import batch_slices, diffusion_loss, eps_score, progress_bar, to_model_space, to_pixel_space
from .conditioned import Conditioned
from .registry import register


@dataclass
class PixelDiffusionConfig:
    fill_value: float = 0.0
    eps_net: str = "unet"
    net: dict = field(default_factory=lambda: {"base": 16, "mults": [1, 2, 2]})
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=5000, batch_size=64, lr=5e-4))
    loss: LossConfig = field(default_factory=LossConfig)
    sde: SDEConfig = field(default_factory=SDEConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    precision: str = "fp32"  # "fp32", "bf16" (autocast) or "tf32" for the ε-network (nets/precision.py)
    compile: bool = False  # torch.compile the ε-network
    # every conditioner's knobs, pixel replacement included (impute.replacement.resample_jumps: RePaint)
    impute: conditioner_configs(elementwise=True) = field(default_factory=conditioner_configs(elementwise=True))


constrain("PixelDiffusionConfig", precision=("choices", PRECISIONS))


@register
class PixelDDPM(Conditioned, Method):
    name = "ddpm"
    config_cls = PixelDiffusionConfig
    relative_cost = 3
    FIT_INDEPENDENT = ("sampler", "impute")  # MissDiff training only
    LEGACY_KEYS = {"guidance": "impute.guidance", "resample_jumps": "impute.replacement.resample_jumps"}
    impute_modes = ("replacement", "guidance")  # evaluated by the sweep; supported_modes() has every conditioner
    elementwise = True

    def _build(self, image_shape):
        self.net = build_eps_net(self.config.eps_net, image_shape, **self.config.net).to(self.device)
        self.sde = VPSDE(**to_dict(self.config.sde))

    def _parts(self):
        return {"net": self.net}

    def _train_net(self, x01, obs_mask, generator, progress, desc, options, model=None, stage="net"):
        """One training run of ε_θ on images in [0, 1]; ``obs_mask`` None = full loss."""
        model = model if model is not None else self.net
        data = (to_model_space(x01),) if obs_mask is None else (to_model_space(x01), obs_mask)
        return train(model, self.training_loss(model, masked=obs_mask is not None), data, self.config.train,
                     generator, desc=desc, progress=progress, device=self.device, **options.train_options(stage))

    def training_loss(self, model, masked: bool = True):
        """ε_θ's training closure in the configured precision: ``masked`` = the MissDiff loss on
        observed pixels, else the full loss (DiffPuter's M-step). Used by ``_train_net`` and by
        ``bench/bench.py``'s timing."""
        return diffusion_loss(model, self.sde, self.config.loss, masked=masked,
                              precision=self.config.precision, compile=self.config.compile)

    def _fit(self, x, obs_mask, generator, progress, options):
        self.net, info = self._train_net(x, obs_mask, generator, progress, "ddpm (MissDiff)", options)
        self.meta.update(net_fit=info)

    def _score(self):
        return eps_score(self.net, self.sde, self.config.loss.prediction, self.config.precision, self.config.compile,
                         self.config.loss.sigma_data)

    def _sample(self, n, generator, progress):
        cfg = self.config.sampler
        slices = list(batch_slices(n, cfg.batch_size))
        bar = progress_bar(len(slices) * cfg.steps, f"{self.name} sample", progress)
        out = []
        for s in slices:  # one prior per solve: a prior that draws per solve (Ambient's masks) draws per batch
            prior = self._diffusion_prior(generator)
            out.append(to_pixel_space(sample(prior.score, self.sde, prior.noise(s.stop - s.start, generator), cfg.steps,
                                             method=cfg.method, generator=generator, progress=bar.update,
                                             grid=cfg.grid)).cpu())
        bar.close()
        return torch.cat(out)

    # ---- conditioning (methods/conditioned.py): the diffusion space is pixel space in [−1, 1] ----
    def _diffusion_prior(self, generator=None) -> Prior:
        c = self.config.sampler
        return Prior(self._score(), self.sde, self.image_shape, c.method, c.grid, self.device)

    def _observation(self, x_obs, obs_mask) -> Observation:
        return Observation(x_obs, obs_mask, to_pixel_space, to_model_space, elementwise=True)

    def _to_pixels(self, x):
        return to_pixel_space(x)

    def _sampler_config(self):
        return self.config.sampler
