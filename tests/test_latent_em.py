"""EM for LDMiss's latent prior (methods/latent_em.py) on a linear-Gaussian toy with a known latent law."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ldmiss import rng
from ldmiss.config import ConfigError
from ldmiss.methods import get_method_class
from ldmiss.methods.fit_options import FitOptions
from ldmiss.methods.latent_em import e_step, redraw, run_em

D, K, SIDE = 16, 2, 4  # pixels (1×4×4 images), latent dimensions (2×1×1 latents)


class LinearVAE(torch.nn.Module):
    """x = 0.5 + A z, and an encoder that shrinks: the ridge estimate of z from the observed pixels
    (the posterior mean under z ~ N(0, I/λ') — like a β-VAE's encoder mean on incomplete images, it
    pulls towards 0 the more pixels are missing)."""

    def __init__(self, a: torch.Tensor, ridge: float):
        super().__init__()
        self.register_buffer("a", a)
        self.ridge = ridge

    def decode(self, z):
        return (0.5 + z.flatten(1) @ self.a.T).view(-1, 1, SIDE, SIDE)

    def encode(self, x, mask):
        xs, ms = (x.flatten(1) - 0.5) * mask.flatten(1), mask.flatten(1)
        gram = torch.einsum("nd,dk,dl->nkl", ms, self.a, self.a) + self.ridge * torch.eye(K)
        z = torch.linalg.solve(gram, xs @ self.a)
        return z.view(-1, K, 1, 1), torch.zeros(len(z), K, 1, 1)


def toy(n=2000, missing=0.75, seed=0):
    gen = rng.generator(seed)
    a = torch.linalg.qr(rng.randn((D, K), gen))[0] * 0.12  # orthogonal columns, pixels within [0, 1]
    z = rng.randn((n, K), gen)
    x = (0.5 + z @ a.T).view(n, 1, SIDE, SIDE)
    m = (rng.rand(x.shape, gen) > missing).float()
    m[:, 0, 0, :2] = 1.0  # at least two observed pixels each, so every z is identified
    return a, z, x * m, m


def model_on(a, em: dict, ridge=0.03):
    model = get_method_class("ldmiss")(
        None, device="cpu", vae={"latent_channels": K, "width": 8},
        prior={"net": {"width": 64, "depth": 2}, "latent_norm": "global",
               "train": {"steps": 600, "batch_size": 256, "lr": 2e-3, "warmup_steps": 20},
               "sampler": {"steps": 50, "batch_size": 1000}},
        impute={"guidance": {"weight": 4.0}}, em=em)
    model._build((1, SIDE, SIDE))
    assert model.latent_shape == (K, 1, 1)
    model.vae = LinearVAE(a, ridge)
    return model


def cov_error(model, n=2000) -> float:
    """‖Cov(prior samples) − I‖_F: the prior's distance from the true latent law N(0, I)."""
    z = model.prior.sample_latents(n, rng.generator(1)).flatten(1)
    return float(torch.linalg.matrix_norm(torch.cov(z.T) - torch.eye(K)))


def test_latent_em_moves_the_prior_towards_the_true_latent_law(one_thread):
    a, z_true, x, m = toy()
    em = {"laps": 1, "e_step": "posterior", "steps": 50,
          "train": {"steps": 600, "batch_size": 256, "lr": 1e-3, "warmup_steps": 20}}
    model = model_on(a, em)
    gen = rng.generator(0)
    z_means = model.vae.encode(x, m)[0]
    model.prior.fit(z_means, gen)
    before = cov_error(model)
    assert before > 0.5  # encoder means of 75%-missing images: a shrunken law
    z_em, infos = run_em(model, z_means, x, m, gen, False, FitOptions())
    after = cov_error(model)
    assert len(infos) == 1 and after < 0.25 * before, (before, after)  # measured: 1.39 → 0.19 (seeds 0–2)
    # the E-step's latents are posterior draws that explain the observed pixels better than the means
    fit = lambda zz: float(((model.vae.decode(zz) - x) * m).pow(2).sum() / m.sum())  # noqa: E731
    assert fit(z_em) < 0.5 * fit(z_means)


def test_reencode_pastes_the_observed_pixels_and_encodes_the_complete_image():
    a, _, x, m = toy(n=64)
    model = model_on(a, {"laps": 1, "e_step": "reencode", "steps": 5}, ridge=1e-6)
    model.prior.fit(model.vae.encode(x, m)[0], rng.generator(0), train=model.config.prior.train.__class__(steps=5))
    seen = []
    encode = model.vae.encode
    model.vae.encode = lambda xx, mm: (seen.append((xx.clone(), mm.clone())), encode(xx, mm))[1]
    z = e_step(model, x, m, rng.generator(0))
    (completed, mask), = seen
    assert torch.equal(mask, torch.ones_like(mask))  # a complete image
    assert torch.equal(completed * m, x * m)  # with its observed pixels, bit for bit
    assert z.shape == (64, K, 1, 1)


def test_an_e_step_redraws_only_its_share_of_the_incomplete_images():
    a, _, x, m = toy(n=40)
    m[:10] = 1.0  # ten complete images: their encoder means are exact and stay
    model = model_on(a, {"laps": 1, "e_step": "posterior", "steps": 3, "fraction": 0.5})
    z0 = model.vae.encode(x, m)[0]
    model.prior.fit(z0, rng.generator(0), train=model.config.prior.train.__class__(steps=5))
    z1 = redraw(model, z0, x, m, rng.generator(0), False)
    changed = (z1 != z0).flatten(1).any(1)
    assert not changed[:10].any() and int(changed.sum()) == 15


def test_em_settings_enter_the_fit_identity_only_when_em_is_on():
    cls = get_method_class("ldmiss")
    off = cls(None, device="cpu").config
    assert cls.fit_settings(off) == cls.fit_settings(cls(None, device="cpu", impute={"guidance": {"weight": 3.0}}).config)
    on = cls(None, device="cpu", em={"laps": 1}).config
    changed = cls(None, device="cpu", em={"laps": 1}, impute={"guidance": {"weight": 3.0}}).config
    assert cls.fit_settings(on) != cls.fit_settings(changed)  # the E-step imputes with these settings
    other = cls(None, device="cpu", em={"laps": 1}, impute={"dps": {"step_size": 3.0}}).config
    assert cls.fit_settings(on) == cls.fit_settings(other)  # but not with the other conditioners'


@pytest.mark.parametrize("em", [{"conditioner": "replacement"}, {"e_step": "mean"}, {"fraction": 1.5}, {"laps": -1}])
def test_bad_em_settings_are_refused(em):
    with pytest.raises(ConfigError):
        get_method_class("ldmiss")(None, device="cpu", em=em)


def test_ldmiss_em_takes_the_presets_ldmiss_table_then_its_own():
    from ldmiss.experiments.config import load_preset
    cfg = load_preset("cpu", {"overrides": {"ldmiss-em": {"em": {"steps": 7}}}})
    ldm, em = cfg.overrides_for("ldmiss"), cfg.overrides_for("ldmiss-em")
    assert em["prior"]["net"] == ldm["prior"]["net"] and em["prior"]["sampler"] == ldm["prior"]["sampler"]
    assert em["impute"] == ldm["impute"] and em["vae"] == ldm["vae"]
    assert em["prior"]["train"]["steps"] == 6000 != ldm["prior"]["train"]["steps"]  # its own table wins
    assert em["em"]["steps"] == 7 and "em" not in ldm


def test_em_settings_are_not_read_without_em_and_the_sampler_is_with_it():
    cls = get_method_class("ldmiss")
    base = cls.fit_settings(cls(None, device="cpu").config)
    assert cls.fit_settings(cls(None, device="cpu", em={"steps": 7, "e_step": "posterior"}).config) == base
    on = cls.fit_settings(cls(None, device="cpu", em={"laps": 1}).config)
    other_sampler = cls.fit_settings(cls(None, device="cpu", em={"laps": 1}, prior={"sampler": {"steps": 7}}).config)
    assert on != other_sampler  # the E-step samples with the prior's sampler


def test_prior_target_with_em_decodes_e_step_latents(fitted, small_batch):
    """With EM the prior's target is an E-step's draws under the fitted model, not the encoder means."""
    x, m = small_batch
    em, plain = fitted["ldmiss-em"], fitted["ldmiss"]
    target = em.prior_target((x[:8] * m[:8]).numpy(), m[:8].numpy(), seed=0)
    assert target.shape == (8, 1, 28, 28)
    assert np.array_equal(target, em.prior_target((x[:8] * m[:8]).numpy(), m[:8].numpy(), seed=0))  # seeded
    assert not np.array_equal(target, em.prior_target((x[:8] * m[:8]).numpy(), m[:8].numpy(), seed=1))  # drawn
    means = plain.prior_target((x[:8] * m[:8]).numpy(), m[:8].numpy(), seed=0)
    assert np.array_equal(means, plain.reconstruct((x[:8] * m[:8]).numpy(), m[:8].numpy()))  # no EM: the means
