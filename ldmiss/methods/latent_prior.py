"""The diffusion prior over β-VAE latents: normaliser + ε-network + VP-SDE + training + sampling.

It is its own object (not buried in LDMiss) so it can be trained, sampled and tested on any
latent set — e.g. a known low-dimensional mixture in the tests — with exactly the configuration
LDMiss uses. It works in the normalised space u = normalize(z); ``to_latent`` maps back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .. import rng
from ..config import constrain, to_dict
from ..diffusion import VPSDE, LatentNormalizer, LossConfig, SamplerConfig, SDEConfig, sample
from ..diffusion.normalizer import KINDS
from ..nets import build_eps_net
from ..nets.precision import PRECISIONS
from ..training import TrainConfig
from ..training import train as _train
from .common import batch_slices, diffusion_loss, eps_score


@dataclass
class LatentPriorConfig:
    """Defaults chosen by the ablation in docs/ablations.md."""
    latent_norm: str = "per_dim"  # "global", "per_dim" or "whiten" (diffusion/normalizer.py)
    eps_net: str = "mlp"
    net: dict = field(default_factory=lambda: {"width": 512, "depth": 4})
    # An MLP over the flattened latent suits MNIST's 98 values but not e.g. 64×64 images' 16×16×2:
    # latents with more than ``mlp_max_values`` values get the convolutional U-Net ``large_net`` instead:
    # one level of base 32 (docs/ablations.md, "Natural images"): 1.45× the MLP's training step at a
    # 16×8×8 latent in bf16 (1.65× fp32; bench/prior_step_time.py), where 0.1's base-64, two-level one
    # took 7.1× (8.2×), and on photo patches it imputes better than the MLP over the same 1,024 values
    mlp_max_values: int = 512
    large_net: dict = field(default_factory=lambda: {"base": 32, "mults": [1]})
    loss: LossConfig = field(default_factory=lambda: LossConfig(prediction="v", time_dist="logsnr"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=10000, batch_size=512, lr=2e-3,
                                                                   lr_schedule="cosine", warmup_steps=200))
    sde: SDEConfig = field(default_factory=SDEConfig)
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(method="ancestral"))
    precision: str = "fp32"  # "fp32", "bf16" (autocast) or "tf32" for the ε-network (nets/precision.py)
    compile: bool = False  # torch.compile the ε-network (no gain for this MLP on the CPU: docs/ablations.md)


constrain("LatentPriorConfig", latent_norm=("choices", KINDS), precision=("choices", PRECISIONS),
          mlp_max_values=("range", 1, None))  # eps_net: checked by check_net_options


def prior_net(cfg: LatentPriorConfig, latent_shape) -> tuple[str, dict]:
    """(ε-network kind, its options) for a latent of ``latent_shape``: ``eps_net``/``net`` unless the
    MLP is asked for a latent larger than ``mlp_max_values``, which gets ``large_net`` (a U-Net)."""
    if cfg.eps_net == "mlp" and math.prod(latent_shape) > cfg.mlp_max_values:
        return "unet", dict(cfg.large_net)
    return cfg.eps_net, dict(cfg.net)


class LatentPrior:
    def __init__(self, cfg: LatentPriorConfig, latent_shape: tuple[int, ...], device="cpu"):
        self.cfg, self.latent_shape, self.device = cfg, tuple(latent_shape), device
        self.normalizer = LatentNormalizer(self.latent_shape, cfg.latent_norm).to(device)
        kind, options = prior_net(cfg, self.latent_shape)
        self.net = build_eps_net(kind, self.latent_shape, **options).to(device)
        self.sde = VPSDE(**to_dict(cfg.sde))

    def parts(self) -> dict:
        return {"normalizer": self.normalizer, "prior": self.net}

    def fit(self, z: torch.Tensor, generator: torch.Generator, progress: bool = False, train: TrainConfig | None = None,
            desc: str = "latent prior", **train_options) -> dict:
        """Fit the normaliser on latents ``z`` (N × latent_shape), then train the ε-network on them from
        its current weights (``train``: the run's settings, default ``cfg.train``; ``train_options``:
        checkpointing, see :func:`ldmiss.training.train`). A second call warm-starts (latent EM)."""
        self.normalizer = self.normalizer.cpu().fit(z)
        with torch.no_grad():
            u = self.normalizer.normalize(z)
        self.normalizer.to(self.device)
        self.net, info = _train(self.net, self.training_loss(), (u,), train or self.cfg.train, generator, desc=desc,
                                progress=progress, device=self.device, **train_options)
        return info

    def training_loss(self):
        """The ε-network's training closure ``loss(u, generator)`` in the configured precision (one
        definition for ``fit`` and for ``bench/bench.py``'s timing)."""
        return diffusion_loss(self.net, self.sde, self.cfg.loss, precision=self.cfg.precision, compile=self.cfg.compile)

    def score(self):
        """score_fn(u, t) in the normalised space, for the samplers and the conditioners."""
        return eps_score(self.net, self.sde, self.cfg.loss.prediction, self.cfg.precision, self.cfg.compile,
                         self.cfg.loss.sigma_data)

    def noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return rng.randn((n, *self.latent_shape), generator, self.device)

    def to_latent(self, u: torch.Tensor) -> torch.Tensor:
        return self.normalizer.denormalize(u)

    def run(self, score_fn, n: int, generator: torch.Generator, progress=None, steps: int = 0) -> torch.Tensor:
        """One reverse-time solve of ``n`` chains with ``score_fn`` (plain or guided) → normalised u;
        ``steps`` 0 = the sampler's."""
        c = self.cfg.sampler
        return sample(score_fn, self.sde, self.noise(n, generator), steps or c.steps, method=c.method,
                      generator=generator, progress=progress, grid=c.grid)

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator, progress=None) -> torch.Tensor:
        """``n`` latents z from the prior (batched by ``sampler.batch_size``)."""
        out = [self.to_latent(self.run(self.score(), s.stop - s.start, generator, progress))
               for s in batch_slices(n, self.cfg.sampler.batch_size)]
        return torch.cat(out)
