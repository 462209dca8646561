"""Small time-conditioned U-Net for ε-prediction on images (28×28 pixels; any H×W divisible by 2^levels).

Kept deliberately small so the pixel-space baselines train on a laptop CPU: one residual block per
level, GroupNorm (per-sample, so batched guidance gradients stay independent), no attention.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UsageError
from .embedding import TimeEmbedding


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int):
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(temb, cout)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.c1(F.silu(self.n1(x))) + self.t(emb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    def __init__(self, shape: tuple[int, int, int], base: int = 16, mults: tuple[int, ...] = (1, 2, 2),
                 temb_dim: int = 32, cond_channels: int = 0):
        """``shape``: C×H×W of what the network predicts; ``cond_channels``: extra input channels
        concatenated after the C image channels (Ambient Diffusion's mask), not predicted."""
        super().__init__()
        c, h, w = shape
        if h % (2 ** (len(mults) - 1)) or w % (2 ** (len(mults) - 1)):
            raise UsageError(f"image size {h}×{w} must be divisible by {2 ** (len(mults) - 1)}")
        self.shape = tuple(shape)
        self.time = TimeEmbedding(temb_dim)
        te = self.time.out_dim
        chans = [base * m for m in mults]
        self.inp = nn.Conv2d(c + cond_channels, chans[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        prev = chans[0]
        for i, ch in enumerate(chans):
            self.down.append(ResBlock(prev, ch, te))
            self.pool.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1) if i < len(chans) - 1 else nn.Identity())
            prev = ch
        self.mid = ResBlock(prev, prev, te)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            self.up.append(ResBlock(prev + ch, ch, te))
            self.upsample.append(nn.ConvTranspose2d(ch, chans[i - 1], 4, 2, 1) if i > 0 else nn.Identity())
            prev = chans[i - 1] if i > 0 else ch
        self.out = nn.Sequential(_norm(chans[0]), nn.SiLU(), nn.Conv2d(chans[0], c, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time(t)
        h = self.inp(x)
        skips = []
        for block, pool in zip(self.down, self.pool):
            h = block(h, emb)
            skips.append(h)
            h = pool(h)
        h = self.mid(h, emb)
        for block, up in zip(self.up, self.upsample):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            h = up(h)
        return self.out(h)
