"""MIWAE (Mattei & Frellsen, ICML 2019) and not-MIWAE (Ipsen, Mattei & Frellsen, ICLR 2021) for images.

**MIWAE** is a VAE trained on incomplete data by the importance-weighted bound on the observed
pixels (MAR assumed): with z_k ~ q(z | x̃, m), k = 1…K,

    L_K = E log (1/K) Σ_k  p(x_o | z_k) p(z_k) / q(z_k | x̃, m).

It imputes by importance sampling: L draws z_l ~ q with weights w_l ∝ p(x_o|z_l) p(z_l)/q(z_l|x̃, m);
the single imputation is Σ_l w̄_l E[x_m | z_l], and a *draw* resamples one z_l by its weight
(sampling importance resampling) and decodes it — so several draws are (approximate) posterior
draws, not copies of one answer.

**not-MIWAE** adds a model of the missingness, p(m | x), for data missing *not* at random: each
importance weight gains log p(m | x_o, z), and so does each imputation weight. The self-masking
model of the paper gives each pixel the logistic

    p(m_d = 1 | x) = σ(−W_d (x_d − b_d))     (m = 1: observed)

(``vae.missingness = "selfmask"``; ``"selfmask_known"`` takes W_d = softplus(·) > 0, the paper's
variant for a known direction — brighter pixels go missing more; ``vae.missingness_shared``: one
W, b for every pixel instead of one per pixel). The model lives in nets/missingness.py, where the
β-VAE of LDMiss takes it too. **Deviation**: the paper draws one x_m^k ~ p(x_m | z_k) per importance
sample; we integrate the missing values out in closed form (exact for a Bernoulli decoder), which
gives the decoder a gradient from the missingness term that a Bernoulli draw does not.

Our networks are the project's convolutional β-VAE (nets/vae.py) with β = 1, not the papers' MLPs;
K = 20 training samples and L = 1,000 imputation samples (the papers use 20 and 10,000; L is a
setting, ``impute_samples``); the decoder likelihood follows the data as for every VAE here.
The authors' public code (nbip/notMIWAE, TensorFlow) was read for the details: parameters W, b of
shape 1×D, x_m sampled from p(x|z) inside the bound (which we integrate instead), the softmax of the summed log-weights for
imputation. No code is copied.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import rng
from ..config import constrain
from ..errors import UsageError
from .base import Method
from .common import batched
from .registry import register
from .result import Cost
from .vae_ops import VAE_INFERENCE_ONLY, Autoencoded, VAEConfig, build_vae, decode_latents, require_missingness, vae_loss


@dataclass
class MIWAEConfig:
    fill_value: float = 0.0
    # the networks and their training; β = 1 (a real ELBO: the prior N(0, I) is then worth sampling),
    # K = iw_samples = 20 importance samples per image (the papers' K), nothing hidden from the encoder
    # vae.missingness = "none" (MAR assumed) is MIWAE; "selfmask" / "selfmask_known" is not-MIWAE
    vae: VAEConfig = field(default_factory=lambda: VAEConfig(beta_kl=1.0, iw_samples=20, encoder_drop=0.0))
    impute_samples: int = 1000  # L: importance samples per image for imputation
    batch_size: int = 50  # images imputed at once (each with L samples)


constrain("MIWAEConfig", impute_samples=("range", 1, None), batch_size=("range", 1, None))


def log_weights(vae, x: torch.Tensor, obs_mask: torch.Tensor, k: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(log importance weights k×N, decoder means k×N×C×H×W) of k draws z ~ q(z | x̃, m) per image:
    log p(x_o | z) + log p(z) − log q(z | x̃, m) [+ log p(m | x_o, z) with the VAE's missingness model]."""
    return vae.importance_log_weights(x, obs_mask, k, generator)


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

    @classmethod
    def check_config(cls, config) -> None:
        if config.vae.beta_kl != 1.0:
            raise UsageError(f"{cls.name}: vae.beta_kl must be 1 (the importance-weighted bound is a bound on the "
                             f"log-likelihood only at β = 1), got {config.vae.beta_kl}")

    def _build(self, image_shape):
        self.vae = build_vae(self.config.vae, image_shape).to(self.device)

    @property
    def missingness(self):
        """The fitted model of p(m | x) (not-MIWAE), or None (MIWAE: MAR assumed)."""
        return self.vae.missingness

    def _parts(self):
        return {"vae": self.vae}

    def _fit(self, x, obs_mask, generator, progress, options):
        from ..training import train
        cfg = self.config.vae
        self.vae, info = train(self.vae, vae_loss(self.vae, cfg, self.config.fill_value), (x, obs_mask), cfg.train,
                               generator, desc=f"{self.name} (K = {cfg.iw_samples})", progress=progress,
                               device=self.device, **options.train_options("vae"))
        self.vae.eval().requires_grad_(False)
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
                log_w, mean = log_weights(self.vae, xo, m, L, generator)
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
                log_w, mean = log_weights(self.vae, xb, mb, L, g)
                w = torch.softmax(log_w, 0)[..., None, None, None]
                outs.append((mb * xb + (1 - mb) * (w * mean).sum(0)).cpu())
        return torch.cat(outs)


@dataclass
class NotMIWAEConfig(MIWAEConfig):
    vae: VAEConfig = field(default_factory=lambda: VAEConfig(beta_kl=1.0, iw_samples=20, encoder_drop=0.0,
                                                             missingness="selfmask"))


constrain("NotMIWAEConfig", impute_samples=("range", 1, None), batch_size=("range", 1, None))


@register
class NotMIWAE(MIWAE):
    """not-MIWAE: MIWAE with the self-masking model of p(m | x) in its bound and its imputation weights."""

    name = "notmiwae"
    config_cls = NotMIWAEConfig

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        require_missingness(cls.name, config.vae, "miwae")
