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


@pytest.mark.parametrize("method,order,grid", [("ode", 1, "edm"), ("heun", 2, "edm"), ("dpmpp2m", 2, "edm"),
                                               ("dpmpp2m", 2, "logsnr"), ("ode", 1, "logsnr")])
def test_deterministic_samplers_follow_the_probability_flow_at_their_order(method, order, grid):
    """``ode`` (DDIM, η = 0) is first order, ``heun`` (EDM) and ``dpmpp2m`` (DPM-Solver++(2M)) second
    order: against the exact flow, the global error falls by 2^order when the steps double (on EDM's
    grid, whose step ratio varies, and on the log-SNR grid)."""
    x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    errors = []
    for steps in (20, 40, 80):  # DPM-Solver++(2M) is pre-asymptotic at 10 (already 4× below DDIM there)
        x = sample(exact_score, sde, x_T.float(), steps, method=method, grid=grid)
        target = ode_closed_form(x_T.float(), float(sde.time_grid(steps, kind=grid)[-2]))
        errors.append(float((x - target).abs().mean()))
    ratios = [errors[1] / errors[0], errors[2] / errors[1]]
    expected = 0.5**order
    assert all(0.6 * expected < r < 1.5 * expected for r in ratios), (errors, ratios)
    again = sample(exact_score, sde, x_T.float(), 10, method=method, grid=grid)
    assert torch.equal(again, sample(exact_score, sde, x_T.float(), 10, method=method, grid=grid))  # no noise


def test_the_multistep_solver_beats_ddim_at_equal_evaluations_and_refuses_what_it_cannot_follow():
    """At 10 evaluations DPM-Solver++(2M) is far closer to the flow than DDIM (its reason to exist);
    its memory of earlier steps rules out RePaint's jumps back and a conditioner's one-at-a-time steps."""
    from ldmiss.diffusion.conditioners.base import Prior, prior_step
    from ldmiss.errors import UsageError
    x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(2))
    target = ode_closed_form(x_T, float(sde.time_grid(10, kind="logsnr")[-2]))
    err = {m: float((sample(exact_score, sde, x_T, 10, method=m, grid="logsnr") - target).abs().mean())
           for m in ("ode", "dpmpp2m")}
    assert err["dpmpp2m"] < 0.25 * err["ode"], err
    with pytest.raises(UsageError, match="multistep"):
        sample(exact_score, sde, x_T, 10, method="dpmpp2m", resample_jumps=2)
    prior = Prior(lambda x, t: exact_score(x, t), sde, (2,), "dpmpp2m", "logsnr", "cpu")
    with pytest.raises(UsageError, match="earlier steps"):
        prior_step(prior, x_T, 1.0, 0.9, exact_score(x_T, torch.ones(len(x_T))), None, False)


def test_time_grids_run_from_one_to_eps_and_the_logsnr_one_is_uniform_in_logsnr():
    for kind in ("linear", "edm", "logsnr"):
        g = sde.time_grid(12, kind=kind)
        assert len(g) == 13 and g[0] == 1.0 and abs(float(g[-1]) - sde.eps) < 1e-7 and bool((g[1:] < g[:-1]).all())
    lam = sde.logsnr(sde.time_grid(12, kind="logsnr").double())
    steps = lam[1:] - lam[:-1]
    assert torch.allclose(steps, steps.mean().expand_as(steps), rtol=1e-3)


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


def test_time_grids_can_start_late_and_refuse_a_start_outside_the_interval():
    from ldmiss.errors import UsageError
    for kind in ("linear", "edm", "logsnr"):
        g = sde.time_grid(8, kind=kind, start=0.4)
        assert len(g) == 9 and float(g[0]) == pytest.approx(0.4) and bool((g[1:] < g[:-1]).all())
        assert abs(float(g[-1]) - sde.eps) < 1e-7
    assert torch.equal(sde.time_grid(5, kind="linear", start=1.0), sde.time_grid(5))
    with pytest.raises(UsageError, match="starts in"):
        sde.time_grid(5, start=1.5)
