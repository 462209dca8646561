"""DiEM against closed forms: the Gaussian initialisation's posterior draws are the Gaussian
conditional law, its Monte-Carlo EM recovers a Gaussian from half-observed rows as well as PPCA
does from complete ones, a lap with exact posterior draws stays at the true Gaussian, and an
E-step redraws only missing pixels of the share of images it is asked to."""
from __future__ import annotations

import torch

from ldmiss import rng
from ldmiss.methods.diem import LowRankGaussian, fit_gaussian

D, R = 16, 3


def truth():
    g = rng.generator(0)
    return LowRankGaussian(rng.randn(D, g) * 0.5, 0.05, rng.randn((D, R), g) * 0.6)


def draw(gaussian, n, g):
    return gaussian.mean + gaussian.s**0.5 * rng.randn((n, D), g) + rng.randn((n, R), g) @ gaussian.w.T


def test_posterior_draws_follow_the_gaussian_conditional():
    true, g = truth(), rng.generator(1)
    x = draw(true, 1, g)
    mask = (torch.arange(D) % 3 != 0).float()[None]  # a third of the coordinates missing
    draws = true.posterior_sample(x.expand(20000, D), mask.expand(20000, D), g, noise=1e-4)
    cov = true.covariance()
    o, h = mask[0] > 0, mask[0] == 0
    gain = cov[h][:, o] @ torch.linalg.inv(cov[o][:, o])
    mean = true.mean[h] + gain @ (x[0, o] - true.mean[o])
    cond = cov[h][:, h] - gain @ cov[o][:, h]
    assert torch.allclose(draws[:, o], x[:, o].expand(20000, -1), atol=1e-3)  # observed: kept
    assert torch.allclose(draws[:, h].mean(0), mean, atol=0.02)
    assert torch.allclose(torch.cov(draws[:, h].T), cond, atol=0.02)


def test_gaussian_em_from_half_observed_rows_matches_complete_data_ppca():
    true, g = truth(), rng.generator(2)
    x = draw(true, 20000, g)
    mask = (rng.rand((20000, D), g) >= 0.5).float()
    fitted, completed = fit_gaussian(x * mask, mask, R, 30, g)
    complete = LowRankGaussian.fit_ppca(x, R)
    err = float((fitted.covariance() - true.covariance()).abs().max())
    err_complete = float((complete.covariance() - true.covariance()).abs().max())
    assert err < 2 * err_complete + 0.01, (err, err_complete)
    assert float((fitted.mean - true.mean).abs().max()) < 0.05
    assert torch.equal(completed * mask, x * mask)


def test_a_lap_with_exact_posterior_draws_stays_at_the_true_gaussian():
    true, g = truth(), rng.generator(3)
    x = draw(true, 20000, g)
    mask = (rng.rand((20000, D), g) >= 0.5).float()
    completed = mask * x + (1 - mask) * true.posterior_sample(x * mask, mask, g)
    lap = LowRankGaussian.fit_ppca(completed, R)
    complete = LowRankGaussian.fit_ppca(x, R)
    err = float((lap.covariance() - true.covariance()).abs().max())
    assert err < 2 * float((complete.covariance() - true.covariance()).abs().max()) + 0.01


def test_the_e_step_redraws_missing_pixels_of_its_share_of_images(fitted, small_batch):
    x, m = small_batch
    model = fitted["diem"]
    start = (x * m).clone()
    with torch.no_grad():
        new = model.e_step(start, x * m, m, rng.generator(0), False)
    assert torch.equal(new[m == 1], (x * m)[m == 1])
    changed = (new != start).flatten(1).any(1)
    assert int(changed.sum()) == round(model.config.e_step_fraction * len(x))
