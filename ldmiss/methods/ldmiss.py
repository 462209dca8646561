"""LDMiss (docs/method.md): robust β-VAE + a VP-SDE prior on its normalised latents + self-guided imputation."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from ..config import constrain
from ..diffusion import Observation, Prior, conditioner_configs
from .base import Method
from .classical import REFINEMENTS, refine_residual
from .common import batch_slices, progress_bar
from .conditioned import Conditioned
from .latent_em import LatentEMConfig, e_step, run_em
from .latent_prior import LatentPrior, LatentPriorConfig
from .registry import register
from .vae_ops import (
    VAE_INFERENCE_ONLY,
    Autoencoded,
    VAEConfig,
    build_vae,
    decode_latents,
    encode_means,
    fit_vae,
    require_missingness,
)

EM_OPTIONS = tuple(f.name for f in fields(LatentEMConfig))  # the em table's options


@dataclass
class LDMissConfig:
    fill_value: float = 0.0
    vae: VAEConfig = field(default_factory=VAEConfig)
    prior: LatentPriorConfig = field(default_factory=LatentPriorConfig)
    # EM for the prior after the usual fit (methods/latent_em.py); em.laps = 0 is the poster's LDMiss
    em: LatentEMConfig = field(default_factory=LatentEMConfig)
    # every conditioner's knobs (impute.guidance: self-guidance, the poster's); replacement is pixel-only
    impute: conditioner_configs(elementwise=False) = field(default_factory=conditioner_configs(elementwise=False))
    # pixel-space refinement of each imputation by the observed pixels (methods/classical.py,
    # refine_residual): "none" (the poster's), "neighbours" or "biharmonic" interpolation of the residual
    refine: str = "none"


constrain("LDMissConfig", refine=("choices", REFINEMENTS))


@register
class LDMiss(Autoencoded, Conditioned, Method):
    """Latent diffusion for missing data.

    >>> model = LDMiss().fit(x_incomplete)           # NaN = missing (or pass obs_mask)
    >>> samples = model.sample(16)
    >>> result = model.impute(x_test, obs_mask, draws=5)   # result.mean, result.std
    >>> model.impute(x_test, obs_mask, mode="dps")        # any of model.supported_modes()
    """

    name = "ldmiss"
    config_cls = LDMissConfig
    relative_cost = 2
    impute_modes = ("guidance",)
    # the fit trains the β-VAE and the prior only
    FIT_INDEPENDENT = ("prior.sampler", "impute", "refine", *(f"vae.{k}" for k in VAE_INFERENCE_ONLY))
    LEGACY_KEYS = {"guidance": "impute.guidance"}

    @classmethod
    def fit_independent(cls, config) -> tuple[str, ...]:
        """With latent EM the fit samples: the prior's sampler and the E-step conditioner's settings
        then shape the weights (they remain changeable for later sampling and imputation)."""
        if config.em.laps == 0:  # no EM: its other settings are never read
            return (*cls.FIT_INDEPENDENT, *(f"em.{k}" for k in EM_OPTIONS if k != "laps"))
        from ..diffusion.conditioners import CONDITIONERS
        others = tuple(f"impute.{n}" for n, c in CONDITIONERS.items() if c.supports(False) and n != config.em.conditioner)
        return (*others, *(p for p in cls.FIT_INDEPENDENT if p not in ("prior.sampler", "impute")))

    @classmethod
    def check_config(cls, config) -> None:
        from ..nets import check_net_options
        check_net_options(config.prior.eps_net, config.prior.net, f"{cls.name}.prior.net")
        check_net_options("unet", config.prior.large_net, f"{cls.name}.prior.large_net")

    def _build(self, image_shape):
        self.vae = build_vae(self.config.vae, image_shape).to(self.device)
        self.latent_shape = (self.config.vae.latent_channels, image_shape[1] // 4, image_shape[2] // 4)
        self.prior = LatentPrior(self.config.prior, self.latent_shape, self.device)

    def _parts(self):
        return {"vae": self.vae, **self.prior.parts()}

    def _fit(self, x, obs_mask, generator, progress, options):
        self.vae, vae_info = fit_vae(self.vae, self.config.vae, x, obs_mask, generator, progress, self.device,
                                     options.cache_dir, fill_value=self.config.fill_value,
                                     **options.train_options("vae"))
        z = encode_means(self.vae, x, obs_mask, self.device)
        prior_info = self.prior.fit(z, generator, progress, **options.train_options("prior"))
        self.meta.update(vae_fit=vae_info, prior_fit=prior_info)
        if self.config.em.laps:
            _, em_infos = run_em(self, z, x, obs_mask, generator, progress, options)
            self.meta.update(em_fits=em_infos)

    def prior_training_latents(self, x: torch.Tensor, obs_mask: torch.Tensor, generator) -> torch.Tensor:
        """The latents the prior was last trained on for these training images: their encoder means,
        or with latent EM an E-step's draws under the fitted model (the prior's target)."""
        if self.config.em.laps == 0:
            return super().prior_training_latents(x, obs_mask, generator)
        return e_step(self, x, obs_mask, generator)

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        """The conditioner's draw, then (``refine``) the residual of the observed pixels interpolated in."""
        out, cost = super()._impute(x, obs_mask, mode, generator, progress, steps)
        return refine_residual(out, x, obs_mask, self.config.refine), cost

    def _config_changed(self) -> None:
        # The prior is its own object (usable without LDMiss) and samples with its own ``cfg``: a new
        # sampler setting must reach it, or ``--set prior.sampler.*`` would be accepted and ignored.
        if getattr(self, "prior", None) is not None:
            self.prior.cfg = self.config.prior

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        """Normalised latent → image in [0, 1] (differentiable, used inside guidance)."""
        return self.vae.decode(self.prior.to_latent(u))

    def _sample(self, n, generator, progress):
        c = self.config.prior.sampler
        bar = progress_bar(len(list(batch_slices(n, c.batch_size))) * c.steps, "ldmiss sample", progress)
        z = self.prior.sample_latents(n, generator, bar.update)
        bar.close()
        return decode_latents(self.vae, z, self.device, c.batch_size)

    # ---- conditioning (methods/conditioned.py): the prior lives in the normalised latent space ----
    def _diffusion_prior(self, generator=None) -> Prior:
        c = self.prior.cfg.sampler
        return Prior(self.prior.score(), self.prior.sde, self.latent_shape, c.method, c.grid, self.device)

    def _observation(self, x_obs, obs_mask) -> Observation:
        return Observation(x_obs, obs_mask, self.decode, self.encode_complete, missingness=self._log_missingness(),
                           encode_observed=self.encode_observed)

    def encode_observed(self, x_obs: torch.Tensor, obs_mask: torch.Tensor) -> torch.Tensor:
        """Incomplete images → normalised latents (encoder mean): what the prior was trained on."""
        with torch.no_grad():
            return self.prior.normalizer.normalize(self.vae.encode(x_obs, obs_mask)[0])

    def _log_missingness(self):
        """log p(m | x_o, x_m) from the β-VAE's missingness model (``vae.missingness``), or None (MAR)."""
        model = getattr(self.vae, "missingness", None)  # a stand-in autoencoder may not have the attribute
        if model is None:
            return None
        return lambda mask, x_obs, pixels: model.log_prob_expected(mask, x_obs, pixels, self.vae.likelihood)

    def encode_complete(self, pixels: torch.Tensor) -> torch.Tensor:
        """Complete images → normalised latents (encoder mean), for conditioners that re-encode."""
        with torch.no_grad():
            return self.prior.normalizer.normalize(self.vae.encode(pixels, torch.ones_like(pixels))[0])

    def _to_pixels(self, u):
        return self.decode(u)

    def _sampler_config(self):
        return self.prior.cfg.sampler


@dataclass
class LDMissEMConfig(LDMissConfig):
    em: LatentEMConfig = field(default_factory=lambda: LatentEMConfig(laps=1))


@register
class LDMissEM(LDMiss):
    """LDMiss with EM for its latent prior on (``em.laps`` = 1; methods/latent_em.py): its own name, so
    a sweep and its report show it beside the poster's LDMiss, trained from the same β-VAE table."""

    name = "ldmiss-em"
    config_cls = LDMissEMConfig
    relative_cost = 3
    inherits_overrides = "ldmiss"  # a preset's [overrides.ldmiss] applies, then [overrides.ldmiss-em]


@dataclass
class LDMissMNARConfig(LDMissConfig):
    vae: VAEConfig = field(default_factory=lambda: VAEConfig(missingness="selfmask"))


@register
class LDMissMNAR(LDMiss):
    """LDMiss with a model of the missingness (``vae.missingness = "selfmask"``, nets/missingness.py):
    the β-VAE is trained on log p(x_o, m | z) instead of log p(x_o | z), as not-MIWAE, and self-guidance
    adds −λ_m log p(m | x_o, D(x̂₀)) to its data term — for images missing not at random. Its own
    name, so a sweep shows it beside LDMiss; a preset's [overrides.ldmiss] applies first."""

    name = "ldmiss-mnar"
    config_cls = LDMissMNARConfig
    inherits_overrides = "ldmiss"

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        require_missingness(cls.name, config.vae, "ldmiss")
