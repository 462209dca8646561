"""Pixel-space DDPM trained with the MissDiff masked loss (docs/method.md).

The network sees zero-imputed images (in [−1, 1] model space the fill 0.0 becomes −1) but the loss
only scores observed pixels. Imputation by ``replacement`` (observed pixels re-noised into x_t each
step; optional RePaint resampling) or ``guidance`` (the LDMiss self-guidance recipe with D = identity).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import constrain, GuidanceConfig, LossConfig, SamplerConfig, SDEConfig, TrainConfig, to_dict
from ..diffusion import VPSDE, Replacement, SelfGuidance, sample
from ..nets import build_eps_net
from ..nets.precision import PRECISIONS
from ..training import train
from .base import Method, register
from .common import batch_slices, diffusion_loss, eps_score, progress_bar, to_model_space, to_pixel_space


@dataclass
class PixelDiffusionConfig:
    fill_value: float = 0.0
    eps_net: str = "unet"
    net: dict = field(default_factory=lambda: {"base": 16, "mults": [1, 2, 2]})
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=5000, batch_size=64, lr=5e-4))
    loss: LossConfig = field(default_factory=LossConfig)
    sde: SDEConfig = field(default_factory=SDEConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    resample_jumps: int = 1  # RePaint resampling for replacement imputation (1 = none)
    precision: str = "fp32"  # "fp32", "bf16" (autocast) or "tf32" for the ε-network (nets/precision.py)
    compile: bool = False  # torch.compile the ε-network


constrain("PixelDiffusionConfig", resample_jumps=("range", 1, None), precision=("choices", PRECISIONS))


@register
class PixelDDPM(Method):
    name = "ddpm"
    config_cls = PixelDiffusionConfig
    relative_cost = 3
    impute_modes = ("replacement", "guidance")

    def _build(self, image_shape):
        self.net = build_eps_net(self.config.eps_net, image_shape, **self.config.net).to(self.device)
        self.sde = VPSDE(**to_dict(self.config.sde))

    def _parts(self):
        return {"net": self.net}

    def _train_net(self, x01, obs_mask, generator, progress, desc, model=None, stage="net"):
        """One training run of ε_θ on images in [0, 1]; ``obs_mask`` None = full loss."""
        model = model if model is not None else self.net
        data = (to_model_space(x01),) if obs_mask is None else (to_model_space(x01), obs_mask)
        loss = diffusion_loss(model, self.sde, self.config.loss, masked=obs_mask is not None,
                              precision=self.config.precision, compile=self.config.compile)
        return train(model, loss, data, self.config.train, generator, desc=desc, progress=progress, device=self.device,
                     **self._train_options(stage))

    def _fit(self, x, obs_mask, generator, progress):
        self.net, info = self._train_net(x, obs_mask, generator, progress, "ddpm (MissDiff)")
        self.meta.update(net_fit=info)

    def _score(self):
        return eps_score(self.net, self.sde, self.config.loss.prediction, self.config.precision, self.config.compile)

    def _run(self, n, generator, bar, score, project=None, jumps=1):
        cfg = self.config.sampler
        noise = torch.randn((n, *self.image_shape), generator=generator, device=generator.device).to(self.device)
        x = sample(score, self.sde, noise, cfg.steps, method=cfg.method, generator=generator, project=project,
                   resample_jumps=jumps, progress=bar.update, grid=cfg.grid)
        return to_pixel_space(x).cpu()

    def _sample(self, n, generator, progress):
        cfg = self.config.sampler
        slices = list(batch_slices(n, cfg.batch_size))
        bar = progress_bar(len(slices) * cfg.steps, f"{self.name} sample", progress)
        out = [self._run(s.stop - s.start, generator, bar, self._score()) for s in slices]
        bar.close()
        return torch.cat(out)

    def _impute(self, x, obs_mask, mode, generator, progress):
        cfg = self.config.sampler
        slices = list(batch_slices(len(x), cfg.batch_size))
        jumps = self.config.resample_jumps if mode == "replacement" else 1
        bar = progress_bar(len(slices) * cfg.steps, f"{self.name} impute ({mode})", progress)
        score, out = self._score(), []
        for s in slices:
            xo, m = x[s].to(self.device), obs_mask[s].to(self.device)
            if mode == "replacement":
                project = Replacement(self.sde, to_model_space(xo), m, generator)
                out.append(self._run(len(xo), generator, bar, score, project, jumps))
            else:
                g = self.config.guidance
                guided = SelfGuidance(score, self.sde, to_pixel_space, xo, m, g.weight, g.norm_match,
                                      g.grad_through_score)
                out.append(self._run(len(xo), generator, bar, guided))
        bar.close()
        return torch.cat(out)
