"""Expectation maximisation for LDMiss's latent prior (``em`` settings of ``ldmiss``).

Why: the prior is trained on the encoder means of the *incomplete* training images. At high missing
rates those latents are blurred guesses (at r = 0.8 on the ``cpu`` grid they decode to FID 64 while
complete test images decode to FID 7), and a prior that matches them perfectly is capped by them. EM
replaces them, lap by lap, with latents that the current model says the *complete* training images
have, then continues training the prior on those:

- **E-step** — for every (or a random ``fraction`` of the) incomplete training image(s), one draw of a
  conditioner (``conditioner``, self-guidance by default, ``steps`` steps) given the observed pixels.
  ``e_step = "posterior"`` keeps the drawn latent itself, a draw of p(z | observed pixels) under the
  current prior; ``"reencode"`` decodes it, pastes the observed pixels back, and takes the encoder
  mean of that completed image, the latent the β-VAE gives a complete image (so observed pixels the
  draw did not fit are restored before the latent is formed).
- **M-step** — the normaliser is refitted to the new latents and the ε-network is trained on them
  for ``train.steps`` steps, warm-started from the previous weights (the EMA copy).

The β-VAE is not retrained. This is Monte-Carlo EM for the prior with the β-VAE held fixed, as
DiEM (methods/diem.py) is for a pixel prior; the difference is that the E-step here is the
imputation LDMiss already does, in a 98-number latent space, so a lap costs a fraction of the fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import rng
from ..config import constrain
from ..diffusion.conditioners import CONDITIONERS, run_conditioner
from ..training import TrainConfig
from .common import batched

E_STEPS = ("posterior", "reencode")


@dataclass
class LatentEMConfig:
    laps: int = 0  # E-step + M-step rounds after the usual fit; 0 = no EM (the poster's LDMiss)
    e_step: str = "reencode"  # "posterior": the drawn latent; "reencode": encoder mean of the completed image
    conditioner: str = "guidance"  # the conditioner that draws the E-step (impute.<name> settings)
    steps: int = 25  # its steps per draw (0 = the conditioner's own setting)
    fraction: float = 1.0  # share of the incomplete training images each E-step redraws (others keep theirs)
    batch_size: int = 500
    # the M-step's training run per lap (warm-started, so shorter and gentler than the first fit)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2000, batch_size=1024, lr=5e-4,
                                                                   lr_schedule="cosine", warmup_steps=100))


def _latent_conditioner(name: str) -> str | None:
    """A problem with ``name`` as the E-step's conditioner, or None (config.py's ``check`` rule)."""
    if name not in CONDITIONERS or not CONDITIONERS[name].supports(False):
        choices = sorted(n for n, c in CONDITIONERS.items() if c.supports(False))
        return f"{name!r} is not a conditioner of a latent prior; choose from {choices}"
    return None


constrain("LatentEMConfig", laps=("range", 0, None), e_step=("choices", E_STEPS),
          conditioner=("check", _latent_conditioner), steps=("range", 0, None), fraction=("range", 0.0, 1.0),
          batch_size=("range", 1, None))


def e_step(model, x: torch.Tensor, obs_mask: torch.Tensor, generator, progress: bool = False) -> torch.Tensor:
    """Latents (N × latent shape, unnormalised, on the CPU) of the incomplete images ``x`` given their
    observed pixels, drawn by the current ``model`` as ``model.config.em`` says."""
    cfg = model.config.em
    prior = model._diffusion_prior(generator)
    conditioner_cfg = model.conditioner_config(cfg.conditioner)
    steps = model.impute_steps(cfg.conditioner, cfg.steps or None)

    def one_batch(xo, m, tick):
        u = run_conditioner(cfg.conditioner, prior, model._observation(xo, m), generator, conditioner_cfg, steps, tick)
        with torch.no_grad():
            if cfg.e_step == "posterior":
                return model.prior.to_latent(u)
            completed = m * xo + (1 - m) * model.decode(u).clamp(0, 1)
            return model.vae.encode(completed, torch.ones_like(completed))[0]

    with torch.no_grad():  # the conditioner enables gradients for its own steps
        return batched(one_batch, x, obs_mask, cfg.batch_size, model.device, f"ldmiss E-step ({cfg.e_step})",
                       progress, steps)


def redraw(model, z: torch.Tensor, x: torch.Tensor, obs_mask: torch.Tensor, generator, progress: bool) -> torch.Tensor:
    """One E-step over the training set: the latents ``z`` with those of (a random ``fraction`` of)
    the incomplete images redrawn; complete images keep their encoder means, which are exact."""
    incomplete = (obs_mask.flatten(1) < 1).any(1).nonzero().squeeze(1)
    take = round(model.config.em.fraction * len(incomplete))
    if take == 0:
        return z
    rows = incomplete[rng.randperm(len(incomplete), generator)[:take]] if take < len(incomplete) else incomplete
    z = z.clone()
    z[rows] = e_step(model, x[rows], obs_mask[rows], generator, progress)
    return z


def run_em(model, z: torch.Tensor, x: torch.Tensor, obs_mask: torch.Tensor, generator, progress: bool,
           options) -> tuple[torch.Tensor, list[dict]]:
    """``model.config.em.laps`` laps of E-step then warm-started M-step of ``model.prior``, from the
    training latents ``z``; returns the last E-step's latents and each M-step's training summary."""
    infos = []
    for lap in range(model.config.em.laps):
        z = redraw(model, z, x, obs_mask, generator, progress)
        infos.append(model.prior.fit(z, generator, progress, train=model.config.em.train,
                                     desc=f"latent prior (EM lap {lap + 1})",
                                     **options.train_options(f"prior_em{lap + 1}")))
    return z, infos


__all__ = ["E_STEPS", "LatentEMConfig", "e_step", "redraw", "run_em"]
