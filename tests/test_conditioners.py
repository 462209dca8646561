"""Every conditioner on a linear-Gaussian problem whose posterior is known in closed form, plus the
contract each one keeps inside the methods (observed pixels kept, seeded, NFE exact).

Prior x ~ N(μ, Σ₀) in 4 dimensions with its exact VP-SDE score, a linear "decoder" D(x) = Wx + b to
6 "pixels" of which 3 are observed with noise σ_y: the posterior is Gaussian,
Σ = (Σ₀⁻¹ + AᵀA/σ_y²)⁻¹, m = Σ(Σ₀⁻¹μ + Aᵀ(y − b_o)/σ_y²) with A the observed rows of W.
"""
import math

import numpy as np
import pytest
import torch

from ldmiss.diffusion import VPSDE
from ldmiss.diffusion.conditioners import CONDITIONERS, Observation, Prior, get_conditioner, run_conditioner
from ldmiss.errors import UsageError
from ldmiss.methods import REGISTRY
from ldmiss.metrics import central_interval, coverage, crps

D, P, SIGMA_Y = 4, 6, 0.1


class LinearGaussian:
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.mu = torch.tensor([0.5, -1.0, 0.0, 1.0])
        L = torch.randn(D, D, generator=g) * 0.5
        self.cov = L @ L.T + 0.2 * torch.eye(D)
        self.evals, self.evecs = torch.linalg.eigh(self.cov)
        self.W = torch.randn(P, D, generator=g) * 0.5
        self.b = torch.full((P,), 0.5)
        self.mask = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
        x_true = self.mu + torch.linalg.cholesky(self.cov) @ torch.randn(D, generator=g)
        self.y = self.W @ x_true + self.b + SIGMA_Y * torch.randn(P, generator=g)
        self.sde = VPSDE()

    def score(self, x, t):
        a, s2 = self.sde.alpha(t)[:, None], (self.sde.sigma(t) ** 2)[:, None]
        z = (x - a * self.mu) @ self.evecs  # eigen-coordinates: C = a²Σ₀ + σ²I is diagonal there
        return -(z / (a**2 * self.evals + s2)) @ self.evecs.T

    def decode(self, x):
        return x @ self.W.T + self.b

    def encode(self, pixels):
        return (pixels - self.b) @ torch.linalg.pinv(self.W).T

    def prior(self, method="ancestral"):
        return Prior(self.score, self.sde, (D,), method=method)

    def observation(self, n):
        return Observation(self.y.expand(n, P).clone(), self.mask.expand(n, P).clone(), self.decode, self.encode)

    def posterior(self):
        A = self.W[self.mask > 0]
        prec = torch.linalg.inv(self.cov) + A.T @ A / SIGMA_Y**2
        cov = torch.linalg.inv(prec)
        mean = cov @ (torch.linalg.solve(self.cov, self.mu) + A.T @ (self.y[self.mask > 0] - self.b[self.mask > 0]) / SIGMA_Y**2)
        return mean, cov


@pytest.fixture(scope="module")
def problem():
    return LinearGaussian()


def config(name, **kw):
    base = CONDITIONERS[name].config_cls()
    for k, v in kw.items():
        setattr(base, k, v)
    return base


def draw(problem, name, n, steps, seed=0, **kw):
    prior, obs = problem.prior(), problem.observation(n)
    x = run_conditioner(name, prior, obs, torch.Generator().manual_seed(seed), config(name, **kw), steps)
    return x, prior


def model_posterior(p, steps):
    """Exact law of the discretised ancestral chain's x_ε (Gaussian: every kernel is affine), then
    conditioned on y with the likelihood N(y; D(x_ε/α_ε), σ_y²) that smc's last weight uses."""
    sde, grid = p.sde, p.sde.time_grid(steps)
    m, S = torch.zeros(D, dtype=torch.float64), torch.eye(D, dtype=torch.float64)
    I = torch.eye(D, dtype=torch.float64)
    for i in range(steps):
        t, s = grid[i], grid[i + 1]
        # x̂₀(x) = Mx + v is affine for a Gaussian prior: read it off at 0 and at the unit vectors
        pts = torch.cat([torch.zeros(1, D), torch.eye(D)])
        tv = torch.full((D + 1,), float(t))
        x0 = sde.tweedie(pts, p.score(pts, tv), tv).double()
        v, M = x0[0], (x0[1:] - x0[0]).T
        a_t, a_s = float(sde.alpha(t)), float(sde.alpha(s))
        var_t, var_s = 1 - a_t**2, 1 - a_s**2
        a_ts = a_t / a_s
        var_ts = var_t - a_ts**2 * var_s
        c1, c2, var = a_ts * var_s / var_t, a_s * var_ts / var_t, var_ts * var_s / var_t
        F = c1 * I + c2 * M
        m, S = F @ m + c2 * v, F @ S @ F.T + var * I
    a = float(sde.alpha(grid[-1]))
    A = p.W[p.mask > 0].double() / a
    y = (p.y - p.b)[p.mask > 0].double()
    prec = torch.linalg.inv(S) + A.T @ A / SIGMA_Y**2
    cov = torch.linalg.inv(prec)
    return cov @ (torch.linalg.solve(S, m) + A.T @ y / SIGMA_Y**2), cov


def moment_errors(x, problem, target=None):
    mean, cov = target if target is not None else problem.posterior()
    x, mean, cov = x.double(), mean.double(), cov.double()
    err_mean = float((x.mean(0) - mean).norm() / cov.diagonal().sum().sqrt())
    err_var = float(((x.var(0) - cov.diagonal()).abs() / cov.diagonal()).max())
    return err_mean, err_var


LATENT = sorted(n for n, c in CONDITIONERS.items() if c.supports(False))  # all but pixel replacement


@pytest.mark.parametrize("name", sorted(CONDITIONERS))
def test_every_registered_conditioner_keeps_the_contract(name):
    """What the rest of the package relies on, for any conditioner (no list of names here): a
    reference, a config whose ``steps`` (0 = the prior sampler's) is checked, and a cost formula
    that ``steps_for_nfe`` inverts, so comparisons at equal cost pick the right steps."""
    cond = CONDITIONERS[name]
    cfg = cond.config_cls()
    assert cond.reference and cfg.steps == 0
    for steps in (1, 7, 40):
        assert cond.steps_for_nfe(cfg, cond.nfe(cfg, steps)) == steps
    from ldmiss.config import ConfigError, from_dict
    with pytest.raises(ConfigError, match="steps"):
        from_dict(cond.config_cls, {"steps": -1})


def test_the_registry_knows_the_pixel_only_conditioner():
    assert {"guidance", "dps", "pigdm", "daps", "repaint", "replacement", "smc"} <= set(CONDITIONERS)
    assert not CONDITIONERS["replacement"].supports(False) and CONDITIONERS["replacement"].supports(True)
    with pytest.raises(ValueError, match="unknown conditioner"):
        get_conditioner("ddrm")


@pytest.mark.parametrize("name", LATENT)
def test_conditioner_lowers_the_observed_error_and_is_seeded(problem, name):
    kw = {"langevin_steps": 20, "langevin_lr": 1e-3, "ode_steps": 2} if name == "daps" else {}
    if name in ("pigdm", "smc", "daps"):
        kw["sigma_y"] = SIGMA_Y
    x, _ = draw(problem, name, 200, 30, seed=1, **kw)
    x_again, _ = draw(problem, name, 200, 30, seed=1, **kw)
    assert torch.equal(x, x_again)
    assert torch.isfinite(x).all()
    prior = problem.prior()
    from ldmiss.diffusion import sample
    free = sample(prior.score, prior.sde, prior.noise(200, torch.Generator().manual_seed(1)), 30, method="ancestral",
                  generator=torch.Generator().manual_seed(2))
    obs = problem.observation(200)
    assert obs.sq_error(x).mean() < 0.5 * obs.sq_error(free).mean()


@pytest.mark.parametrize("name", sorted(CONDITIONERS))
def test_network_evaluations_are_counted_exactly(problem, name):
    kw = {"particles": 3} if name == "smc" else {"resample_jumps": 3} if name in ("repaint", "replacement") else \
        {"ode_steps": 2, "langevin_steps": 1} if name == "daps" else {}
    cond, cfg = get_conditioner(name), config(name, **kw)
    prior = problem.prior()
    obs = problem.observation(5)
    if name == "replacement":  # pixel replacement needs an elementwise space: use the pixels as the space
        prior = Prior(lambda x, t: -x, problem.sde, (P,))
        obs = Observation(obs.x_obs, obs.mask, lambda x: x, lambda p: p, elementwise=True)
    run_conditioner(name, prior, obs, torch.Generator().manual_seed(0), cfg, 7)
    assert prior.nfe == cond.nfe(cfg, 7)
    assert cond.nfe(cfg, cond.steps_for_nfe(cfg, cond.nfe(cfg, 7))) == cond.nfe(cfg, 7)


def test_pigdm_samples_the_exact_posterior_and_tightens_with_steps(problem):
    # 3 observed pixels: 3 conjugate-gradient iterations solve Σv = r exactly
    coarse = moment_errors(draw(problem, "pigdm", 2000, 10, cg_steps=3, sigma_y=SIGMA_Y)[0], problem)
    fine = moment_errors(draw(problem, "pigdm", 2000, 120, cg_steps=3, sigma_y=SIGMA_Y)[0], problem)
    assert fine[0] < 0.06 and fine[1] < 0.2, fine  # Monte Carlo error at N = 2000: ≈ 0.02 and ≈ 0.1
    assert fine[0] + fine[1] < coarse[0] + coarse[1]


def test_smc_approaches_the_posterior_as_particles_grow(problem):
    """SMC is exact for the model it runs — the 30-step ancestral chain, whose law is Gaussian here and
    computed exactly (about 20% narrower than the continuous prior's) — so it is checked against that."""
    target = model_posterior(problem, 30)
    one = moment_errors(draw(problem, "smc", 1000, 30, particles=1, sigma_y=SIGMA_Y)[0], problem, target)
    many = moment_errors(draw(problem, "smc", 1000, 30, particles=32, sigma_y=SIGMA_Y)[0], problem, target)
    assert many[0] < 0.12 and many[1] < 0.3, many  # Monte Carlo error at N = 1000: ≈ 0.03 and ≈ 0.13
    assert many[0] + many[1] < 0.5 * (one[0] + one[1]), (one, many)


def test_coverage_and_crps_match_gaussian_closed_forms():
    g = torch.Generator().manual_seed(0)
    n, d = 4000, 400
    truth = torch.randn(n, 1, 1, 1, generator=g)
    draws = torch.randn(d, n, 1, 1, 1, generator=g)  # calibrated: the same N(0, 1)
    mask = torch.zeros_like(truth)
    assert abs(coverage(draws, truth, mask, 0.9) - 0.9) < 0.02
    # CRPS of N(0, 1) averaged over y ~ N(0, 1): E|X − Y| − ½E|X − X'| = 2/√π − 1/√π = 1/√π
    assert abs(crps(draws, truth, mask) - 1 / math.sqrt(math.pi)) < 0.01
    lo, hi = central_interval(draws, 0.9)
    assert np.allclose(lo.mean(), -1.645, atol=0.05) and np.allclose(hi.mean(), 1.645, atol=0.05)
    # 8-bit truth: a value within half a grey level of the interval is covered (a decoder never outputs exact 0)
    zeros, near = torch.zeros(1, 1, 1, 1), torch.full((3, 1, 1, 1, 1), 1e-6)
    assert coverage(near, zeros, torch.zeros(1, 1, 1, 1)) == 1.0
    assert coverage(near, zeros, torch.zeros(1, 1, 1, 1), tolerance=0.0) == 0.0
    point = draws[:1].expand(3, *draws.shape[1:])  # a deterministic imputer: CRPS = mean absolute error
    assert abs(crps(point, truth, mask) - float((draws[0] - truth).abs().mean())) < 1e-6
    assert crps(draws, truth, torch.ones_like(truth)) != crps(draws, truth, torch.ones_like(truth))  # NaN: nothing missing


# every conditionable method × every conditioner its diffusion space supports, from the registries
CONTRACT = [(name, mode) for name, cls in REGISTRY.items() if cls.conditionable and name != "diffputer"
            for mode, c in CONDITIONERS.items() if c.supports(cls.elementwise)]


@pytest.mark.parametrize("name,mode", CONTRACT)
def test_every_conditioner_inside_the_methods(fitted, small_batch, name, mode):
    """The shared contract (diffusers-style, over every method × conditioner): observed pixels are
    returned exactly, a seed reproduces the draw, and the cost the result carries is the conditioner's
    formula, with the backward passes of the conditioners that differentiate through the network."""
    x, m = small_batch
    method = fitted[name]
    assert mode in method.supported_modes()
    xo, mo = x[:6] * m[:6], m[:6]
    result = method.impute(xo, mo, mode=mode, seed=4, progress=False)
    a, b = result.mean, method.impute(xo, mo, mode=mode, seed=4, progress=False).mean
    assert np.array_equal(a, b) and np.isfinite(a).all()
    keep = mo.numpy() == 1
    assert np.array_equal(a[keep], x[:6].numpy()[keep])
    planned = method.planned_cost(mode)
    assert result.cost.nfe == planned.nfe and result.cost.steps == planned.steps
    assert (result.cost.backward_nfe > 0) == (mode in ("guidance", "dps", "pigdm", "smc"))  # daps: decoder only
    assert "impute_cost" not in method.meta  # a value of the result, not a side channel


def test_each_conditioner_defaults_to_the_prior_samplers_steps_and_keeps_its_own(fitted):
    """``impute.<name>.steps`` = 0 means the prior sampler's steps, for every conditioner; one
    conditioner's steps never leak into another's (0.1 let ``guidance.steps`` set them all)."""
    method = fitted["ldmiss"]
    sampler_steps = method.prior.cfg.sampler.steps
    try:
        method.set_inference_options({"impute": {"guidance": {"steps": 7}}})
        assert method.planned_cost("guidance").steps == 7
        for mode in method.supported_modes():
            if mode != "guidance":
                assert method.planned_cost(mode).steps == sampler_steps, mode
        assert method.planned_cost("dps", steps=3).steps == 3
    finally:
        method.set_inference_options({"impute": {"guidance": {"steps": 0}}})


def test_latent_prior_has_no_pixel_replacement(fitted, small_batch):
    x, m = small_batch
    assert "replacement" not in fitted["ldmiss"].supported_modes()
    with pytest.raises(ValueError, match="unknown imputation mode"):
        fitted["ldmiss"].impute(x[:2] * m[:2], m[:2], mode="replacement")


def test_conditioners_on_a_two_evaluation_sampler_count_and_refuse_honestly(fitted, small_batch):
    """With EDM's Heun as the prior's sampler, the conditioners that drive it spend two evaluations
    per step (but the last) and plan for it; the one that takes steps from a score it evaluated
    itself (dps) says it cannot, instead of using a stale score."""
    x, m = small_batch
    method = fitted["ddpm"]
    method.set_inference_options({"sampler": {"method": "heun"}})
    try:
        for mode in ("guidance", "replacement", "pigdm"):
            result = method.impute(x[:3] * m[:3], m[:3], mode=mode, seed=1, progress=False)
            steps = method.impute_steps(mode)
            assert result.cost.nfe == method.planned_cost(mode).nfe == 2 * (steps - 1) + 1, mode
        assert method.impute(x[:3] * m[:3], m[:3], mode="guidance", progress=False).cost.backward_nfe == 2 * (steps - 1) + 1
        with pytest.raises(ValueError, match="first-order sampler"):
            method.impute(x[:3] * m[:3], m[:3], mode="dps", progress=False)
    finally:
        method.set_inference_options({"sampler": {"method": "em"}})


def test_compare_imputers_leaves_out_what_the_sampler_cannot_drive():
    """compare-imputers listed dps on a Heun prior, whose run then failed mid-table."""
    from ldmiss.diffusion.conditioners import CONDITIONERS
    assert not CONDITIONERS["dps"].works_with("heun") and CONDITIONERS["dps"].works_with("ancestral")
    assert all(c.works_with("heun") for n, c in CONDITIONERS.items() if n != "dps")


def test_guidance_can_start_from_the_encoders_guess_where_there_is_an_encoder(fitted, small_batch):
    """start_time < 1 (SDEdit's start): LDMiss begins at its encoder's latent noised to t₀ — a solve
    as seeded and observed-exact as from noise; a pixel prior has no such encoder and says so."""
    x, m = small_batch
    x, m = x[:6], m[:6]
    model = fitted["ldmiss"]
    late = {"impute": {"guidance": {"start_time": 0.4}}}
    model.set_inference_options(late)
    try:
        a = model.impute((x * m).numpy(), m.numpy(), seed=3, progress=False).mean
        b = model.impute((x * m).numpy(), m.numpy(), seed=3, progress=False).mean
    finally:
        model.set_inference_options({"impute": {"guidance": {"start_time": 1.0}}})
    c = model.impute((x * m).numpy(), m.numpy(), seed=3, progress=False).mean
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    obs = m.numpy().astype(bool)
    assert np.array_equal(a[obs], (x * m).numpy()[obs])
    pixel = fitted["ddpm"]
    pixel.set_inference_options(late)
    try:
        with pytest.raises(UsageError, match="start_time"):
            pixel.impute((x * m).numpy(), m.numpy(), mode="guidance", seed=0, progress=False)
    finally:
        pixel.set_inference_options({"impute": {"guidance": {"start_time": 1.0}}})
