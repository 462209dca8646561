"""The literature's probabilistic imputation scores against closed forms: CSDI's normalised quantile
CRPS and the energy score, on Gaussian predictive laws whose CRPS is known exactly."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from ldmiss.metrics.uncertainty import crps, energy_score, quantile_crps


def _gaussian_case(n=2000, k=400, sig=0.2, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.5, 1.5, n)
    y = rng.normal(mu, sig)
    draws = rng.normal(mu, sig, (k, n))
    z = (y - mu) / sig
    closed = sig * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))  # CRPS of N(μ, σ²) at y
    shape = (n, 1, 1, 1)
    return draws.reshape(k, *shape).astype(np.float32), y.reshape(shape), np.zeros(shape), closed.mean(), y


def test_energy_score_of_one_pixel_is_the_crps_and_matches_the_gaussian_closed_form():
    d, y, m, closed, _ = _gaussian_case()
    assert energy_score(d, y, m) == pytest.approx(crps(d, y, m), rel=1e-9)
    assert energy_score(d, y, m) == pytest.approx(closed, rel=0.02)


def test_quantile_crps_is_the_crps_over_the_mean_absolute_truth_up_to_its_19_levels():
    """2 ∫ pinball loss dα is the CRPS; CSDI's 19 levels (0.05…0.95) overshoot it by a few per cent."""
    d, y, m, closed, yv = _gaussian_case()
    scaled = quantile_crps(d, y, m) * np.abs(yv).sum() / len(yv)
    assert closed < scaled < 1.08 * closed
    observed = np.ones_like(m)
    assert math.isnan(quantile_crps(d, y, observed)) and math.isnan(energy_score(d, y, observed))


def test_the_energy_score_prefers_draws_with_the_right_joint_spread():
    """64-pixel images, truth and draws from one Gaussian: the calibrated ensemble scores best, an
    over-confident (×0.3) or over-dispersed (×3) one worse, and only missing pixels count."""
    rng = np.random.default_rng(1)
    n, k = 300, 20
    mu = rng.uniform(0.2, 0.8, (n, 1, 8, 8))
    y = mu + 0.1 * rng.standard_normal((n, 1, 8, 8))
    noise = rng.standard_normal((k, n, 1, 8, 8))
    m = (rng.random((n, 1, 8, 8)) > 0.5).astype(np.float32)
    scores = {s: energy_score(mu[None] + s * 0.1 * noise, y, m) for s in (0.3, 1.0, 3.0)}
    assert scores[1.0] < scores[0.3] and scores[1.0] < scores[3.0], scores
    wrong_observed = mu[None] + 0.1 * noise + 5.0 * m  # garbage on observed pixels changes nothing
    assert energy_score(wrong_observed, y, m) == pytest.approx(scores[1.0], rel=1e-9)
    with pytest.raises(ValueError):
        energy_score(mu[None], y, m)
