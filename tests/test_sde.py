"""VP-SDE coefficients, marginals and Tweedie's formula against closed forms on Gaussian data."""
import math

import torch

from ldmiss.diffusion import VPSDE

sde = VPSDE()


def test_alpha_matches_integral_of_beta():
    t = torch.linspace(0.001, 1.0, 7, dtype=torch.float64)
    for ti in t:
        s = torch.linspace(0, float(ti), 20001, dtype=torch.float64)
        integral = torch.trapezoid(sde.beta(s), s)
        assert math.isclose(float(sde.alpha(ti)), math.exp(-0.5 * float(integral)), rel_tol=1e-6)
    assert torch.allclose(sde.alpha(t) ** 2 + sde.sigma(t) ** 2, torch.ones_like(t))
    assert float(sde.alpha(torch.tensor(1.0))) < 7e-3  # x_1 is essentially pure noise


def test_forward_marginal_of_gaussian_data():
    g = torch.Generator().manual_seed(0)
    mu, s = 2.0, 0.5
    x0 = mu + s * torch.randn(200_000, 1, generator=g)
    for tv in (0.1, 0.5, 0.9):
        t = torch.full((len(x0),), tv)
        xt = sde.marginal(x0, t, torch.randn(x0.shape, generator=g))
        a, sig = float(sde.alpha(torch.tensor(tv))), float(sde.sigma(torch.tensor(tv)))
        assert abs(xt.mean() - a * mu) < 0.01
        assert abs(xt.var() - (a**2 * s**2 + sig**2)) < 0.01


def test_tweedie_equals_gaussian_posterior_mean():
    mu, s = torch.tensor([1.0, -2.0]), torch.tensor([0.3, 1.5])
    xt = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    t = torch.rand(50, generator=torch.Generator().manual_seed(2)) * 0.98 + 0.01
    a, sig = sde.alpha(t)[:, None], sde.sigma(t)[:, None]
    var_t = a**2 * s**2 + sig**2
    score = -(xt - a * mu) / var_t  # exact score of p_t
    posterior_mean = mu + a * s**2 / var_t * (xt - a * mu)  # E[x0 | xt], closed form
    assert torch.allclose(sde.tweedie(xt, score, t), posterior_mean, atol=1e-5)


def test_score_eps_conversion_round_trip():
    eps, t = torch.randn(4, 3), torch.rand(4) * 0.9 + 0.05
    assert torch.allclose(sde.eps_from_score(sde.score_from_eps(eps, t), t), eps, atol=1e-6)
