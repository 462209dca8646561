"""DiffPuter (docs/method.md): EM with a pixel diffusion model.

Start from the zero- (or mean-) filled training set; K times: M-step trains the DDPM with the full
loss on the current completed data (warm-started from the previous iteration by default); E-step
re-imputes the training set's missing pixels by replacement sampling, averaging ``draws`` samples.
The E-step after the last M-step would not change the model, so it is skipped. The last model is
used for sampling and test imputation (by replacement).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import rng
from ..config import constrain
from ..diffusion.conditioners import CONDITIONERS
from ..errors import UsageError
from ..training import TrainConfig
from .ddpm import PixelDDPM, PixelDiffusionConfig
from .registry import register


@dataclass
class DiffPuterConfig(PixelDiffusionConfig):
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2500, batch_size=64, lr=5e-4))
    em_iterations: int = 2
    e_step_draws: int = 1
    warm_start: bool = True
    init_fill: str = "zero"  # "zero" or "mean" (per-pixel mean of observed training values)


constrain("DiffPuterConfig", em_iterations=("range", 1, None), e_step_draws=("range", 1, None),
          init_fill=("choices", ("zero", "mean")))


@register
class DiffPuter(PixelDDPM):
    name = "diffputer"
    config_cls = DiffPuterConfig
    impute_modes = ("replacement",)
    # its E-step imputes the training set by replacement during the fit: the sampler and
    # impute.replacement shape the model, so only the other conditioners' knobs are free of the
    # fit; a fitted DiffPuter may still sample and impute with another sampler
    FIT_INDEPENDENT = tuple(f"impute.{n}" for n, c in CONDITIONERS.items() if c.supports(True) and n != "replacement")
    SAMPLED_DURING_FIT = ("sampler", "impute.replacement")

    def initial_fill(self, x, obs_mask):
        if self.config.init_fill == "zero":
            return x * obs_mask
        if self.config.init_fill == "mean":
            mean = (x * obs_mask).sum(0) / obs_mask.sum(0).clamp_min(1)
            return obs_mask * x + (1 - obs_mask) * mean
        raise UsageError(f"init_fill must be 'zero' or 'mean', not {self.config.init_fill!r}")

    def e_step(self, completed, x, obs_mask, generator, progress):
        """Re-impute the missing pixels of the training set; observed pixels never change.

        Only images with at least one missing pixel are sampled (a complete image has nothing to
        re-impute), so the E-step costs nothing at a 0% missing rate.
        """
        rows = (obs_mask.flatten(1) < 1).any(1).nonzero().squeeze(1)
        completed = completed.clone()
        if len(rows) == 0:
            return completed
        xs, ms = x[rows], obs_mask[rows]
        draws = [self._impute(xs, ms, "replacement", generator, progress)[0] for _ in range(self.config.e_step_draws)]
        completed[rows] = ms * xs + (1 - ms) * torch.stack(draws).mean(0)
        return completed

    def _fit(self, x, obs_mask, generator, progress, options):
        cfg = self.config
        if cfg.em_iterations < 1:
            raise UsageError("em_iterations must be ≥ 1")
        completed = self.initial_fill(x, obs_mask)
        raw, infos = self.net, []
        for k in range(cfg.em_iterations):
            if k > 0 and not cfg.warm_start:
                with rng.isolated(rng.seed_from(generator), self.device):  # a fresh initialisation
                    self._build(self.image_shape)
                raw = self.net
            self.net, info = self._train_net(completed, None, generator, progress, f"diffputer M-step {k + 1}", options,
                                             model=raw, stage=f"m_step{k + 1}")
            infos.append(info)
            if k < cfg.em_iterations - 1:
                with torch.inference_mode():
                    completed = self.e_step(completed, x, obs_mask, generator, progress)
        self.meta.update(em_fits=infos)
