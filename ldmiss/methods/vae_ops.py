"""The robust β-VAE stage shared by LDMiss and the ``vae`` reference: config, fitting, encoding."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import cache, rng
from ..config import constrain, to_dict
from ..errors import UsageError
from ..nets import VAE
from ..nets.likelihoods import LIKELIHOODS
from ..nets.missingness import MISSINGNESS, build_missingness
from ..nets.precision import PRECISIONS, autocast
from ..training import TrainConfig, train
from .common import batch_slices
from .fit_identity import digest, without_paths


@dataclass
class VAEConfig:
    latent_channels: int = 2
    width: int = 32
    encoder_sees_mask: bool = True
    beta_kl: float = 1e-6
    iw_samples: int = 1
    # fraction of the observed pixels hidden from the encoder in each training step, still scored by
    # the reconstruction (nets/vae.py, VAE.loss): 0 is the poster's robust β-VAE
    encoder_drop: float = 0.0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=3000, batch_size=128, lr=1e-3))
    map_steps: int = 100  # decoder-inversion steps for the `vae` reference's "map" mode
    map_lr: float = 0.05
    precision: str = "fp32"  # "fp32", "bf16" (autocast) or "tf32" for the encoder and decoder while training
    # decoder p(x | z): bernoulli, cbernoulli or gaussian (nets/likelihoods.py), or "auto": what the
    # training data suggests, decided at fit (data/datasets.py, suggest_likelihood: bernoulli for
    # near-binary images like MNIST, else gaussian); the fitted model's config holds the choice
    likelihood: str = "auto"
    # a model of p(m | x) trained with the bound (nets/missingness.py): "none" assumes the mask carries
    # no information (MAR); "selfmask" / "selfmask_known" (W > 0) model self-masking MNAR, as not-MIWAE
    missingness: str = "none"
    missingness_shared: bool = False  # one W, b for every pixel instead of one per pixel


constrain("VAEConfig", missingness=("choices", MISSINGNESS), precision=("choices", PRECISIONS),
          likelihood=("choices", ("auto", *LIKELIHOODS)),
          latent_channels=("range", 1, None), width=("range", 1, None), beta_kl=("range", 0.0, None),
          iw_samples=("range", 1, None), encoder_drop=("range", 0.0, 0.95), map_steps=("range", 0, None),
          map_lr=("range", 0.0, None))


def require_missingness(name: str, cfg: VAEConfig, without: str) -> None:
    """UsageError unless the β-VAE config models the missingness (a method that exists for MNAR data)."""
    if cfg.missingness == "none":
        raise UsageError(f"{name} models the missingness: vae.missingness must be 'selfmask' or 'selfmask_known' "
                         f"(without it, it is {without})")


def build_vae(cfg: VAEConfig, image_shape) -> VAE:
    if image_shape[1] % 4 or image_shape[2] % 4:
        raise UsageError(f"the β-VAE downsamples by 4; image size {image_shape[1:]} must be divisible by 4")
    # "auto" is decided by the fit from the data; a β-VAE built without data (benchmarks, tests) is Bernoulli
    likelihood = "bernoulli" if cfg.likelihood == "auto" else cfg.likelihood
    return VAE(image_shape[0], cfg.latent_channels, cfg.width, cfg.encoder_sees_mask, likelihood,
               build_missingness(cfg.missingness, image_shape, cfg.missingness_shared))


def vae_loss(vae: VAE, cfg: VAEConfig, fill_value: float = 0.0):
    """The β-VAE's training closure ``loss(x, obs_mask, generator)`` for :func:`ldmiss.training.train`,
    in the config's precision (one definition for the fit and for ``bench/bench.py``'s timing).
    ``fill_value`` is what the method puts in missing pixels, for the pixels ``encoder_drop`` hides."""
    def loss(xb, mb, g):
        with autocast(cfg.precision, xb.device):
            return vae.loss(xb, mb, cfg.beta_kl, cfg.iw_samples, g, cfg.encoder_drop, fill_value)
    return loss


def fit_vae(vae: VAE, cfg: VAEConfig, x: torch.Tensor, obs_mask: torch.Tensor, generator: torch.Generator,
            progress: bool, device, cache_dir=None, checkpoint=None, checkpoint_every: float = 300.0,
            fill_value: float = 0.0) -> tuple[VAE, dict]:
    """Train on incomplete data: the reconstruction term only counts observed pixels.

    With ``cache_dir``, the result is keyed by everything that determines it (config, data, mask,
    initial weights, generator state) and reused when present, restoring the generator state that
    training would have left, so a cached fit is indistinguishable from a fresh one. A lock file
    makes a second process wait for the first one's training instead of repeating it, and the
    training checkpoints beside the cache file (or at ``checkpoint`` without a cache), so a killed
    fit resumes."""
    loss = vae_loss(vae, cfg, fill_value)
    if cache_dir is None:
        return train(vae, loss, (x, obs_mask), cfg.train, generator, desc="β-VAE", progress=progress, device=device,
                     checkpoint=checkpoint, checkpoint_every=checkpoint_every)
    with cache.entry(cache_dir, f"vae-{_fit_key(vae, cfg, x, obs_mask, generator, fill_value)}") as entry:
        if entry.ready:
            state = torch.load(entry.path / "vae.pt", weights_only=True)
            vae.load_state_dict(state["weights"])
            generator.set_state(state["generator"])
            return vae.to(device).eval().requires_grad_(False), {**json.loads(state["info"]), "cached": True}
        vae, info = train(vae, loss, (x, obs_mask), cfg.train, generator, desc="β-VAE", progress=progress, device=device,
                          checkpoint=entry.scratch / "vae.ckpt", checkpoint_every=checkpoint_every)
        with entry.build() as tmp:
            torch.save({"weights": {k: v.cpu() for k, v in vae.state_dict().items()},
                        "generator": generator.get_state(), "info": json.dumps(info)}, tmp / "vae.pt")
    return vae, {**info, "cached": False}


# Settings that only the `vae` method's decoder inversion reads, after training: two configs that
# differ in them train the same β-VAE. The methods that hold a VAEConfig list them among their
# FIT_INDEPENDENT options, and the shared β-VAE cache leaves them out of its key.
VAE_INFERENCE_ONLY = ("map_steps", "map_lr")


def _fit_key(vae: VAE, cfg: VAEConfig, x: torch.Tensor, obs_mask: torch.Tensor, generator: torch.Generator,
             fill_value: float = 0.0) -> str:
    training = without_paths(to_dict(cfg), VAE_INFERENCE_ONLY)
    if cfg.encoder_drop:  # the hidden pixels' value; otherwise x already holds it in every missing pixel
        training["fill_value"] = fill_value
    return digest(training, x, obs_mask, generator.get_state(), *vae.state_dict().values())


@torch.no_grad()
def encode_means(vae: VAE, x: torch.Tensor, obs_mask: torch.Tensor, device, batch_size: int = 1000) -> torch.Tensor:
    out = [vae.encode(x[s].to(device), obs_mask[s].to(device))[0].cpu() for s in batch_slices(len(x), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def decode_latents(vae: VAE, z: torch.Tensor, device, batch_size: int = 1000) -> torch.Tensor:
    """Mean images in [0, 1] of latents ``z`` (batched; on the CPU on return)."""
    return torch.cat([vae.decode(z[s].to(device)).cpu() for s in batch_slices(len(z), batch_size)])


class Autoencoded:
    """Mixin for methods built on the robust β-VAE (``self.vae``): what the evaluation's floors need.

    ``reconstruct`` is decode(encoder mean); ``decoder_floor`` is the best imputation this decoder can
    give, found with the true missing pixels in hand (the evaluation's floor). ``prior_target`` decodes the latents a latent prior
    is trained on for given training images — their encoder means, unless the method replaced them
    (LDMiss's latent EM) — the distribution the prior is trained to match."""

    autoencoder = True
    has_prior_target = True  # a latent prior is (or could be) trained on its encodings: the evaluation's target

    def _adapt_to_data(self, x: torch.Tensor, obs_mask: torch.Tensor) -> None:
        """``vae.likelihood = "auto"``: take the one the observed training pixels suggest — the same
        rule the CLI and the sweep apply to a dataset — record it (``meta["vae_likelihood"]``, and the
        config, so the saved model says what ran), and say so when it departs from the poster's
        Bernoulli (a user's grey-level or photo data)."""
        if self.config.vae.likelihood != "auto":
            return
        from ..config import merge
        from ..data.datasets import suggest_likelihood
        choice = suggest_likelihood(x[obs_mask > 0].cpu().numpy())
        self.config = merge(self.config, {"vae": {"likelihood": choice}}, self.name)
        self.meta["vae_likelihood"] = {"likelihood": choice, "chosen_by": "auto (the training data)"}
        if choice != "bernoulli":
            warnings.warn(f"{self.name}: vae.likelihood 'auto' chose {choice!r} for these images (they are not "
                          "near-binary); set vae.likelihood to choose yourself", UserWarning, stacklevel=3)

    def _reconstruct(self, x: torch.Tensor, obs_mask: torch.Tensor) -> torch.Tensor:
        return decode_latents(self.vae, encode_means(self.vae, x, obs_mask, self.device), self.device)

    def _decoder_floor(self, x: torch.Tensor, obs_mask: torch.Tensor, steps: int) -> torch.Tensor:
        """The best this decoder can fill the missing pixels with, knowing them: decode(z*) there, with z*
        the latent that best fits the true missing pixels (:func:`oracle_latents`, from the encoder mean
        of the observed pixels). Every imputation of these methods is decode(some z) on the missing
        pixels, so none can beat it, up to the search's own optimum — and it starts where the `vae`
        encoder imputation ends, so it is never above that one."""
        z0 = encode_means(self.vae, x * obs_mask, obs_mask, self.device)
        z = oracle_latents(self.vae, x, 1 - obs_mask, z0, steps, self.config.vae.map_lr, self.device)
        return decode_latents(self.vae, z, self.device)

    def prior_training_latents(self, x: torch.Tensor, obs_mask: torch.Tensor, generator) -> torch.Tensor:
        """The latents a prior is trained on for the (prepared) images ``x``: their encoder means."""
        return encode_means(self.vae, x, obs_mask, self.device)

    def prior_target(self, x, obs_mask=None, seed: int = 0) -> np.ndarray:
        """decode(the prior's training latents) of training images ``x`` (NaN or ``obs_mask`` = missing),
        in [0, 1]; ``seed`` for methods whose training latents are draws."""
        self._check_fitted()
        xt, m = self._prepare(x, obs_mask, image_shape=self.image_shape)
        with torch.no_grad(), rng.isolated(None, self.device):
            z = self.prior_training_latents(xt, m, rng.generator(seed))
            return decode_latents(self.vae, z, self.device).clamp(0, 1).numpy()


# Adam steps of the decoder floor's latent search (as many as the vae's map mode: ≈ 130 s for N = 2000
# MNIST on one AVX-512 core beside a 2-job sweep)
FLOOR_STEPS = 100


def oracle_latents(vae: VAE, x: torch.Tensor, target_mask: torch.Tensor, z0: torch.Tensor, steps: int, lr: float,
                   device, batch_size: int = 500) -> torch.Tensor:
    """Per image, the latent whose decoded mean best fits the *true* pixels ``target_mask`` marks (squared
    error): Adam from ``z0``, each image keeping its best iterate, ``z0`` included — so the result is
    never worse than the start, whatever the optimiser does on this non-convex surface."""
    out = []
    for s in batch_slices(len(x), batch_size):
        xb, tb = x[s].to(device), target_mask[s].to(device)
        z = z0[s].to(device).detach().clone().requires_grad_(True)
        best_z, best = z.detach().clone(), torch.full((len(xb),), float("inf"), device=device)
        opt = torch.optim.Adam([z], lr=lr)
        with torch.enable_grad():
            for step in range(steps + 1):
                err = ((vae.decode(z) - xb) ** 2 * tb).flatten(1).sum(1)
                better = err.detach() < best
                best = torch.where(better, err.detach(), best)
                best_z[better] = z.detach()[better]
                if step == steps:
                    break
                opt.zero_grad()
                err.sum().backward()
                opt.step()
        out.append(best_z.cpu())
    return torch.cat(out)


def map_latents(vae: VAE, x: torch.Tensor, obs_mask: torch.Tensor, z0: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """Decoder inversion: optimise z (from the encoder mean) to fit the observed pixels, no prior."""
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = -(vae.likelihood.log_prob(vae.decoder(z), x) * obs_mask).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return z.detach()
