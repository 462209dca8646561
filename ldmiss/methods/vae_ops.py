"""The robust β-VAE stage shared by LDMiss and the ``vae`` reference: config, fitting, encoding."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from ..config import TrainConfig
from ..nets import VAE
from ..training import train
from .common import batch_slices


@dataclass
class VAEConfig:
    latent_channels: int = 2
    width: int = 32
    encoder_sees_mask: bool = True
    beta_kl: float = 1e-6
    iw_samples: int = 1
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=3000, batch_size=128, lr=1e-3))
    map_steps: int = 100  # decoder-inversion steps for the `vae` reference's "map" mode
    map_lr: float = 0.05


def build_vae(cfg: VAEConfig, image_shape) -> VAE:
    if image_shape[1] % 4 or image_shape[2] % 4:
        raise ValueError(f"the β-VAE downsamples by 4; image size {image_shape[1:]} must be divisible by 4")
    return VAE(image_shape[0], cfg.latent_channels, cfg.width, cfg.encoder_sees_mask)


def fit_vae(vae: VAE, cfg: VAEConfig, x: torch.Tensor, obs_mask: torch.Tensor, generator: torch.Generator,
            progress: bool, device) -> tuple[VAE, dict]:
    """Train on incomplete data: the reconstruction term only counts observed pixels."""
    loss = lambda xb, mb, g: vae.loss(xb, mb, cfg.beta_kl, cfg.iw_samples, g)
    return train(vae, loss, (x, obs_mask), cfg.train, generator, desc="β-VAE", progress=progress, device=device)


@torch.no_grad()
def encode_means(vae: VAE, x: torch.Tensor, obs_mask: torch.Tensor, device, batch_size: int = 1000) -> torch.Tensor:
    out = [vae.encode(x[s].to(device), obs_mask[s].to(device))[0].cpu() for s in batch_slices(len(x), batch_size)]
    return torch.cat(out)


def map_latents(vae: VAE, x: torch.Tensor, obs_mask: torch.Tensor, z0: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """Decoder inversion: optimise z (from the encoder mean) to fit the observed pixels, no prior."""
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            logits = vae.decoder(z)
            loss = (F.binary_cross_entropy_with_logits(logits, x, reduction="none") * obs_mask).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return z.detach()
