"""Convolutional β-VAE for C×H×W images (H, W divisible by 4) with a latent_channels×H/4×W/4 latent
(MNIST: 784 → 2×7×7 = 98 values).

The encoder q(z | x̃, m) optionally sees the observation mask as extra channels, so it can tell a
missing pixel from a black one. The decoder p(x | z) is a per-pixel likelihood (nets/likelihoods.py:
Bernoulli by default, continuous Bernoulli or Gaussian); because it factorises over pixels, missing
pixels simply drop out of it.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import rng
from ..missing import apply_mask
from .likelihoods import Likelihood


class Encoder(nn.Module):
    def __init__(self, channels: int, latent_channels: int, width: int, sees_mask: bool):
        super().__init__()
        self.sees_mask = sees_mask
        cin = channels * (2 if sees_mask else 1)
        self.net = nn.Sequential(
            nn.Conv2d(cin, width, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * latent_channels, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor, obs_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([x, obs_mask], dim=1) if self.sees_mask else x
        mu, logvar = self.net(h).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    def __init__(self, channels: int, latent_channels: int, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * width, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, 1, 1), nn.SiLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's raw per-pixel parameter (Bernoulli logits by default)."""
        return self.net(z)


class VAE(nn.Module):
    def __init__(self, channels: int = 1, latent_channels: int = 2, width: int = 32, sees_mask: bool = True,
                 likelihood: str = "bernoulli", missingness: nn.Module | None = None):
        super().__init__()
        self.encoder = Encoder(channels, latent_channels, width, sees_mask)
        self.decoder = Decoder(channels, latent_channels, width)
        self.likelihood = Likelihood(likelihood, channels)
        # p(m | x) for data missing not at random (nets/missingness.py), or None: MAR assumed
        self.missingness = missingness

    def encode(self, x, obs_mask):
        return self.encoder(x, obs_mask)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image in [0, 1] (differentiable; used by guidance)."""
        return self.likelihood.mean(self.decoder(z))

    def loss(self, x: torch.Tensor, obs_mask: torch.Tensor, beta: float, iw_samples: int = 1,
             generator: torch.Generator | None = None, encoder_drop: float = 0.0,
             fill_value: float = 0.0) -> torch.Tensor:
        """Negative (β-weighted) ELBO per image, reconstruction over observed pixels only.

        ``iw_samples`` > 1 gives the MIWAE importance-weighted bound
        log mean_k exp(log p(x_o|z_k) + β[log p(z_k) − log q(z_k|x̃)]).

        With a missingness model (``self.missingness``, not-MIWAE), log p(x_o | z) becomes
        log p(x_o, m | z) = log p(x_o | z) + log p(m | x_o, z), the missing values integrated out.

        ``encoder_drop`` > 0 hides that fraction of the observed pixels from the encoder (they are
        set to ``fill_value`` and marked missing in its input) while the reconstruction still scores
        every observed pixel. Without it an encoder need only pass on the pixels it sees; with it,
        it must infer pixels it did not see, which is what encoding an incomplete image asks of it.
        """
        x_enc, m_enc = x, obs_mask
        if encoder_drop > 0.0:
            u = rng.rand(obs_mask.shape, generator, obs_mask.device)
            m_enc = obs_mask * (u >= encoder_drop).to(obs_mask.dtype)
            x_enc = apply_mask(x, m_enc, fill_value)
        k = max(1, int(iw_samples))
        mu, logvar, noise, z, out = self._draw(x_enc, m_enc, k, generator)
        log_px = self.log_observed(out, x, obs_mask)  # k × N
        if k == 1:
            kl = 0.5 * (mu**2 + torch.exp(0.5 * logvar) ** 2 - 1.0 - logvar).flatten(1).sum(-1)
            return (-log_px[0] + beta * kl).mean()
        log_w = log_px + beta * self._log_prior_ratio(z, noise, logvar)
        return -(torch.logsumexp(log_w, dim=0) - torch.log(torch.tensor(float(k)))).mean()

    def _draw(self, x_enc, m_enc, k: int, generator):
        """k reparametrised draws z ~ q(z | x̃, m) per image and their decoder outputs (k × N × …)."""
        mu, logvar = self.encode(x_enc, m_enc)
        mu, logvar = mu.float(), logvar.float()  # the likelihood in fp32 even when the nets run under autocast
        noise = rng.randn((k, *mu.shape), generator, mu.device)
        z = mu[None] + torch.exp(0.5 * logvar)[None] * noise
        out = self.decoder(z.flatten(0, 1)).float().view(k, *x_enc.shape)
        return mu, logvar, noise, z, out

    @staticmethod
    def _log_prior_ratio(z, noise, logvar) -> torch.Tensor:
        """log p(z) − log q(z | x̃, m) per draw (k × N); the Gaussians' constants cancel."""
        return -0.5 * (z**2).flatten(2).sum(-1) + 0.5 * (noise**2 + logvar[None]).flatten(2).sum(-1)

    def log_observed(self, out: torch.Tensor, x: torch.Tensor, obs_mask: torch.Tensor) -> torch.Tensor:
        """log p(x_o | z) per draw — plus log p(m | x_o, z) when the VAE models the missingness — from
        the decoder outputs ``out`` (k × N × C × H × W): what the observed data say about each draw."""
        log_p = (self.likelihood.log_prob(out, x[None].expand_as(out)) * obs_mask[None]).flatten(2).sum(-1)
        if self.missingness is not None:
            log_p = log_p + self.missingness.log_prob_expected(obs_mask, x, self.likelihood.mean(out), self.likelihood)
        return log_p

    def importance_log_weights(self, x: torch.Tensor, obs_mask: torch.Tensor, k: int,
                               generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(log importance weights k × N, decoder means k × N × C × H × W) of k draws z ~ q(z | x̃, m):
        log p(x_o, m | z) + log p(z) − log q(z | x̃, m), the terms of the importance-weighted bound
        (β = 1) and of importance-resampling imputation."""
        _, logvar, noise, z, out = self._draw(x, obs_mask, k, generator)
        return self.log_observed(out, x, obs_mask) + self._log_prior_ratio(z, noise, logvar), self.likelihood.mean(out)
