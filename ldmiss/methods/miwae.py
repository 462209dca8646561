"""MIWAE (Mattei & Frellsen, ICML 2019) and not-MIWAE (Ipsen, Mattei & Frellsen, ICLR 2021) for images.

**MIWAE** is a VAE trained on incomplete data by the importance-weighted bound on the observed
pixels (MAR assumed): with z_k ~ q(z | x̃, m), k = 1…K,

    L_K = E log (1/K) Σ_k  p(x_o | z_k) p(z_k) / q(z_k | x̃, m).

It imputes by importance sampling: L draws z_l ~ q with weights w_l ∝ p(x_o|z_l) p(z_l)/q(z_l|x̃, m);
the single imputation is Σ_l w̄_l E[x_m | z_l], and a *draw* resamples one z_l by its weight
(sampling importance resampling) and decodes it — so several draws are (approximate) posterior
draws, not copies of one answer.

**not-MIWAE** adds a model of the missingness, p(m | x), for data missing *not* at random: each
importance weight gains log p(m | x_o, x_m^k) with x_m^k ~ p(x_m | z_k) (reparametrised for a
Gaussian decoder; for a Bernoulli decoder a plain sample, as in the authors' code), and so does
each imputation weight. The self-masking model of the paper gives each pixel the logistic

    p(m_d = 1 | x) = σ(−W_d (x_d − b_d))     (m = 1: observed)

(``missingness = "selfmask"``; ``"selfmask_known"`` takes W_d = softplus(·) > 0, the paper's
variant for a known direction — brighter pixels go missing more; ``missingness_shared``: one W, b
for every pixel instead of one per pixel).

Our networks are the project's convolutional β-VAE (nets/vae.py) with β = 1, not the papers' MLPs;
K = 20 training samples and L = 1,000 imputation samples (the papers use 20 and 10,000; L is a
setting, ``impute_samples``); the decoder likelihood follows the data as for every VAE here.
The authors' public code (nbip/notMIWAE, TensorFlow) was read for the details: parameters W, b of
shape 1×D, x_m sampled from p(x|z) inside the bound, the softmax of the summed log-weights for
imputation. No code is copied.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import rng
from ..config import constrain
from .base import Method
from .common import batched
from .registry import register
from .result import Cost
from .vae_ops import VAE_INFERENCE_ONLY, Autoencoded, VAEConfig, build_vae, decode_latents

MISSINGNESS = ("none", "selfmask", "selfmask_known")


class SelfMasking(nn.Module):
    """p(m | x) = Π_d Bernoulli(m_d; σ(−W_d (x_d − b_d))): each pixel's chance of being observed
    depends on its own value. W = 0 at the start (MCAR); ``known_sign``: W = softplus(w) > 0."""

    def __init__(self, image_shape, shared: bool = False, known_sign: bool = False):
        super().__init__()
        shape = (1, 1, 1) if shared else tuple(image_shape)
        self.w = nn.Parameter(torch.zeros(shape))
        self.b = nn.Parameter(torch.zeros(shape))
        self.known_sign = known_sign

    def weight(self) -> torch.Tensor:
        return F.softplus(self.w) if self.known_sign else self.w

    def log_prob(self, obs_mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(m | x) per image (summed over pixels); ``x`` (…×C×H×W) broadcasts against ``obs_mask``."""
        logits = -self.weight() * (x - self.b)
        return -F.binary_cross_entropy_with_logits(logits, obs_mask.expand_as(logits), reduction="none").flatten(-3).sum(-1)


@dataclass
class MIWAEConfig:
    fill_value: float = 0.0
    # the networks and their training; β = 1 (a real ELBO: the prior N(0, I) is then worth sampling),
    # K = iw_samples = 20 importance samples per image (the papers' K), nothing hidden from the encoder
    vae: VAEConfig = field(default_factory=lambda: VAEConfig(beta_kl=1.0, iw_samples=20, encoder_drop=0.0))
    missingness: str = "none"  # "none" = MIWAE; "selfmask", "selfmask_known" = not-MIWAE
    missingness_shared: bool = False  # one W, b for all pixels instead of one per pixel
    impute_samples: int = 1000  # L: importance samples per image for imputation
    batch_size: int = 50  # images imputed at once (each with L samples)


constrain("MIWAEConfig", missingness=("choices", MISSINGNESS), impute_samples=("range", 1, None),
          batch_size=("range", 1, None))


def log_weights(vae, missingness: SelfMasking | None, x: torch.Tensor, obs_mask: torch.Tensor, k: int,
                generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(log importance weights k×N, decoder means k×N×C×H×W) of k draws z ~ q(z | x̃, m) per image:
    log p(x_o | z) + log p(z) − log q(z | x̃, m) [+ log p(m | x_o, x_m ~ p(x_m | z))]. The Gaussian
    constants of p(z) and q cancel."""
    mu, logvar = vae.encode(x, obs_mask)
    mu, logvar = mu.float(), logvar.float()
    noise = rng.randn((k, *mu.shape), generator, mu.device)
    z = mu[None] + torch.exp(0.5 * logvar)[None] * noise
    out = vae.decoder(z.flatten(0, 1)).float().view(k, *x.shape)
    lik = vae.likelihood
    log_w = (lik.log_prob(out, x[None].expand_as(out)) * obs_mask[None]).flatten(2).sum(-1)
    log_w = log_w - 0.5 * (z**2).flatten(2).sum(-1) + 0.5 * (noise**2 + logvar[None]).flatten(2).sum(-1)
    mean = lik.mean(out)
    if missingness is not None:
        if lik.kind == "gaussian":  # x_m ~ p(x_m | z), reparametrised
            scale = torch.exp(lik.log_scale.clamp(math.log(1e-3), math.log(1.0)))
            x_m = mean + scale * rng.randn(mean.shape, generator, mean.device)
        else:  # Bernoulli-like decoders: a plain sample (no gradient through it), as the authors do
            x_m = (rng.rand(mean.shape, generator, mean.device) < mean.detach()).to(mean.dtype)
        full = obs_mask[None] * x[None] + (1 - obs_mask[None]) * x_m
        log_w = log_w + missingness.log_prob(obs_mask[None], full)
    return log_w, mean


class _Model(nn.Module):
    """The β-VAE and the missingness model as one module: what the training loop optimises."""

    def __init__(self, vae, missingness):
        super().__init__()
        self.vae, self.missingness = vae, missingness


@register
class MIWAE(Autoencoded, Method):
    """MIWAE: a VAE trained by the importance-weighted bound on the observed pixels; imputation by
    importance resampling. Its subclass ``notmiwae`` adds a model of p(m | x)."""

    name = "miwae"
    config_cls = MIWAEConfig
    unobserved_fill = "from the prior's importance-weighted decoder means (an empty image carries no information)"
    shares_autoencoder = False  # its own β = 1 VAE, not the preset's shared β-VAE
    impute_modes = ("importance",)
    FIT_INDEPENDENT = ("impute_samples", "batch_size", *(f"vae.{k}" for k in VAE_INFERENCE_ONLY))
    has_prior_target = False  # its prior is N(0, I): no latent prior trained on encodings

    def _build(self, image_shape):
        self.vae = build_vae(self.config.vae, image_shape).to(self.device)
        kind = self.config.missingness
        self.missingness = None if kind == "none" else SelfMasking(
            image_shape, self.config.missingness_shared, known_sign=kind == "selfmask_known").to(self.device)

    def _parts(self):
        parts = {"vae": self.vae}
        if self.missingness is not None:
            parts["missingness"] = self.missingness
        return parts

    def _fit(self, x, obs_mask, generator, progress, options):
        from ..nets.precision import autocast
        from ..training import train
        cfg = self.config.vae
        model = _Model(self.vae, self.missingness)

        def loss(xb, mb, g):
            with autocast(cfg.precision, xb.device):
                log_w, _ = log_weights(model.vae, model.missingness, xb, mb, cfg.iw_samples, g)
            return -(torch.logsumexp(log_w, 0) - math.log(cfg.iw_samples)).mean()

        model, info = train(model, loss, (x, obs_mask), cfg.train, generator, desc=f"{self.name} (K = {cfg.iw_samples})",
                            progress=progress, device=self.device, **options.train_options("vae"))
        model.eval().requires_grad_(False)
        self.vae, self.missingness = model.vae, model.missingness
        self.meta.update(vae_fit=info)

    def _sample(self, n, generator, progress):
        z = rng.randn((n, *self.latent_shape()), generator, self.device)
        return decode_latents(self.vae, z, self.device)

    def latent_shape(self) -> tuple[int, int, int]:
        c, h, w = self.image_shape
        return (self.config.vae.latent_channels, h // 4, w // 4)

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        """One draw: per image, L importance samples and one resampled by its weight, decoded."""
        L = self.config.impute_samples

        def one_batch(xo, m, tick):
            with torch.no_grad():
                log_w, mean = log_weights(self.vae, self.missingness, xo, m, L, generator)
                # resample one of the L by its weight: the Gumbel-max trick, argmax_l (log w_l + G_l)
                u = rng.rand(log_w.shape, generator, log_w.device).clamp(1e-12, 1 - 1e-7)
                pick = (log_w - torch.log(-torch.log(u))).argmax(0)
                tick(1)
                return mean[pick, torch.arange(len(xo), device=mean.device)]

        out = batched(one_batch, x, obs_mask, self.config.batch_size, self.device, f"{self.name} impute", progress)
        return out, Cost(steps=1, nfe=L)

    def single_imputation(self, x, obs_mask=None, seed: int = 0) -> torch.Tensor:
        """The papers' single imputation: Σ_l w̄_l E[x_m | z_l] (the importance-weighted posterior mean)."""
        xt, m = self._prepare(x, obs_mask, image_shape=self.image_shape)
        g = rng.generator(seed)
        L = self.config.impute_samples
        outs = []
        with torch.no_grad():
            for s in range(0, len(xt), self.config.batch_size):
                xb, mb = xt[s:s + self.config.batch_size].to(self.device), m[s:s + self.config.batch_size].to(self.device)
                log_w, mean = log_weights(self.vae, self.missingness, xb, mb, L, g)
                w = torch.softmax(log_w, 0)[..., None, None, None]
                outs.append((mb * xb + (1 - mb) * (w * mean).sum(0)).cpu())
        return torch.cat(outs)


@dataclass
class NotMIWAEConfig(MIWAEConfig):
    missingness: str = "selfmask"


constrain("NotMIWAEConfig", missingness=("choices", MISSINGNESS[1:]), impute_samples=("range", 1, None),
          batch_size=("range", 1, None))


@register
class NotMIWAE(MIWAE):
    """not-MIWAE: MIWAE with the self-masking model of p(m | x) in its bound and its imputation weights."""

    name = "notmiwae"
    config_cls = NotMIWAEConfig
