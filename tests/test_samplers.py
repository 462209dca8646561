"""Samplers reproduce a Gaussian target when given its exact score."""
import pytest
import torch

from ldmiss.diffusion import VPSDE, Replacement, sample

sde = VPSDE()
MU, STD = torch.tensor([1.5, -0.5]), torch.tensor([0.4, 1.2])


def exact_score(x, t):
    a, s = sde.alpha(t)[:, None], sde.sigma(t)[:, None]
    return -(x - a * MU) / (a**2 * STD**2 + s**2)


@pytest.mark.parametrize("method,steps", [("em", 500), ("ancestral", 200)])
def test_sampler_reproduces_gaussian(method, steps):
    g = torch.Generator().manual_seed(0)
    x = sample(exact_score, sde, torch.randn(20000, 2, generator=g), steps, method=method, generator=g)
    assert torch.allclose(x.mean(0), MU, atol=0.04), x.mean(0)
    assert torch.allclose(x.std(0), STD, atol=0.04), x.std(0)


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
        sample(exact_score, sde, torch.randn(2, 2), 3, method="heun")
    with pytest.raises(ValueError, match="steps"):
        sample(exact_score, sde, torch.randn(2, 2), 0)
