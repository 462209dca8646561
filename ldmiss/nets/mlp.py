"""Residual MLP ε-network for small latents (7×7×2 = 98 values).

On the 7×7 latent grid a small conv net was both slower and worse than this MLP (docs/method.md,
"Calibration"), so the
latent prior flattens its input; the output has the input's shape.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import UsageError
from .embedding import TimeEmbedding

TIME_CONDITIONING = ("add", "film")


class _Block(nn.Module):
    """Pre-norm residual block. The noise level enters either as a bias added to the hidden layer
    (``add``, as in the DDPM U-Net's blocks) or as a per-feature scale and shift of the normalised
    input (``film``, DiT's adaLN), which lets t rescale every feature rather than only shift it."""

    def __init__(self, width: int, temb: int, cond: str = "add"):
        super().__init__()
        self.cond = cond
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.temb = nn.Linear(temb, 2 * width if cond == "film" else width)
        self.fc2 = nn.Linear(width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h, emb):
        if self.cond == "film":
            scale, shift = self.temb(emb).chunk(2, dim=1)
            y = self.fc1(torch.nn.functional.silu(self.norm(h) * (1 + scale) + shift))
        else:
            y = self.fc1(torch.nn.functional.silu(self.norm(h))) + self.temb(emb)
        return h + self.fc2(torch.nn.functional.silu(y))


class ResMLP(nn.Module):
    CHOICES = {"cond": TIME_CONDITIONING}  # checked with the other options by check_net_options

    def __init__(self, shape: tuple[int, ...], width: int = 512, depth: int = 4, temb_dim: int = 64,
                 cond: str = "add"):
        super().__init__()
        if cond not in TIME_CONDITIONING:
            raise UsageError(f"unknown time conditioning {cond!r}; choose from {list(TIME_CONDITIONING)}")
        self.shape = tuple(shape)
        d = math.prod(self.shape)
        self.time = TimeEmbedding(temb_dim)
        self.inp = nn.Linear(d, width)
        self.blocks = nn.ModuleList(_Block(width, self.time.out_dim, cond) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, d))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time(t)
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h).view(x.shape)
