"""Samplers reproduce a Gaussian target when given its exact score (every registered sampler), and
the deterministic one follows the probability-flow ODE's closed form."""
import pytest
import torch

from ldmiss.diffusion import STEPPERS, VPSDE, Replacement, sample

sde = VPSDE()
MU, STD = torch.tensor([1.5, -0.5]), torch.tensor([0.4, 1.2])


def exact_score(x, t):
    a, s = sde.alpha(t)[:, None], sde.sigma(t)[:, None]
    return -(x - a * MU) / (a**2 * STD**2 + s**2)


STEPS = {"em": 500}  # Euler–Maruyama needs more steps than the others for this tolerance; default 200


@pytest.mark.parametrize("method", sorted(STEPPERS))
def test_every_sampler_reproduces_a_gaussian(method):
    g = torch.Generator().manual_seed(0)
    x = sample(exact_score, sde, torch.randn(20000, 2, generator=g), STEPS.get(method, 200), method=method,
               generator=g)
    assert torch.allclose(x.mean(0), MU, atol=0.04), x.mean(0)
    assert torch.allclose(x.std(0), STD, atol=0.04), x.std(0)


def ode_closed_form(x_T: torch.Tensor, t_last: float) -> torch.Tensor:
    """Where the probability-flow ODE takes x_T for Gaussian data: it keeps the standardised
    coordinate z = (x_t − α_t μ)/√(α_t² s² + σ_t²); the solver returns the Tweedie mean at its last
    grid time before ε, μ + α s² z/√(α² s² + σ²)."""
    a1, s1 = float(sde.alpha(torch.tensor(1.0))), float(sde.sigma(torch.tensor(1.0)))
    z = (x_T - a1 * MU) / torch.sqrt(a1**2 * STD**2 + s1**2)
    a, s = float(sde.alpha(torch.tensor(t_last))), float(sde.sigma(torch.tensor(t_last)))
    return MU + a * STD**2 * z / torch.sqrt(a**2 * STD**2 + s**2)


@pytest.mark.parametrize("method,order", [("ode", 1), ("heun", 2)])
def test_deterministic_samplers_follow_the_probability_flow_at_their_order(method, order):
    """``ode`` (DDIM, η = 0) is first order and ``heun`` (EDM) second order: against the exact flow,
    the global error falls by 2^order when the steps double (on EDM's grid)."""
    x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    errors = []
    for steps in (10, 20, 40):
        x = sample(exact_score, sde, x_T.float(), steps, method=method, grid="edm")
        target = ode_closed_form(x_T.float(), float(sde.time_grid(steps, kind="edm")[-2]))
        errors.append(float((x - target).abs().mean()))
    ratios = [errors[1] / errors[0], errors[2] / errors[1]]
    expected = 0.5**order
    assert all(0.6 * expected < r < 1.5 * expected for r in ratios), (errors, ratios)
    again = sample(exact_score, sde, x_T.float(), 10, method=method, grid="edm")
    assert torch.equal(again, sample(exact_score, sde, x_T.float(), 10, method=method, grid="edm"))  # no noise


def test_progress_callback_called_once_per_step():
    calls = []
    sample(exact_score, sde, torch.randn(4, 2), 7, progress=calls.append)
    assert calls == [1] * 7


def test_replacement_keeps_observed_coordinates_and_resampling_runs():
    x_obs = torch.tensor([[0.7, 0.0]]).repeat(500, 1)
    m = torch.tensor([[1.0, 0.0]]).repeat(500, 1)
    g = torch.Generator().manual_seed(3)
    proj = Replacement(sde, x_obs, m, g)
    x = sample(exact_score, sde, torch.randn(500, 2, generator=g), 100, method="ancestral", generator=g,
               project=proj, resample_jumps=2)
    # at t = ε the re-noised observation is the observation up to σ_ε ≈ 0.01
    assert torch.allclose(x[:, 0], x_obs[:, 0], atol=0.05)
    assert torch.allclose(x[:, 1].mean(), MU[1], atol=0.15)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(exact_score, sde, torch.randn(2, 2), 3, method="rk45")
    with pytest.raises(ValueError, match="steps"):
        sample(exact_score, sde, torch.randn(2, 2), 0)
