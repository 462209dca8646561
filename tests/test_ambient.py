"""Ambient Diffusion against closed forms: on Gaussian data seen through MCAR masks, the Ambient
loss (further corruption δ > 0) learns the optimal denoiser E[x₀ | Ã ⊙ y] on the pixels it never
sees, and the naive masked loss (δ = 0) does not."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ldmiss import rng
from ldmiss.diffusion import VPSDE, LossConfig
from ldmiss.errors import UsageError
from ldmiss.methods.ambient import ambient_denoise, ambient_loss, edm_coefficients
from ldmiss.training import TrainConfig, train

D = 4  # 1×2×2 images: a 4-dimensional Gaussian
MU = torch.tensor([0.3, -0.2, 0.1, 0.0])
L = torch.tensor([[0.5, 0, 0, 0], [0.4, 0.3, 0, 0], [0.2, 0.1, 0.35, 0], [-0.3, 0.2, 0.1, 0.3]])
COV = L @ L.T


class TinyDenoiser(nn.Module):
    """An MLP on the flattened [masked image, mask] input (the U-Net's place for 2×2 images)."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Linear(2 * D + 1, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, D))

    def forward(self, x, t):
        return self.f(torch.cat([x.flatten(1), t[:, None]], 1)).view(-1, 1, 2, 2)


def gaussian(n, gen):
    return (MU + rng.randn((n, D), gen) @ L.T).view(n, 1, 2, 2)


def optimal_denoiser(y, mask, sigma_e):
    """E[x₀ | x₀_V + σ_e n_V] per row, V the pixels the mask shows: the Gaussian posterior mean."""
    out = []
    for yi, mi in zip(y.view(-1, D), mask.view(-1, D)):
        v = mi > 0
        s_vv = COV[v][:, v] + sigma_e**2 * torch.eye(int(v.sum()))
        out.append(MU + COV[:, v] @ torch.linalg.solve(s_vv, yi[v] - MU[v]))
    return torch.stack(out).view(-1, 1, 2, 2)


def test_edm_coefficients_match_edms_preconditioning():
    sde = VPSDE()
    t = torch.tensor([0.05, 0.5, 1.0])
    c_skip, c_out, c_in, weight = edm_coefficients(sde, t, 0.5)
    sigma = sde.sigma(t) / sde.alpha(t)
    assert torch.allclose(c_skip, 0.25 / (sigma**2 + 0.25))
    assert torch.allclose(c_out, sigma * 0.5 / (sigma**2 + 0.25).sqrt())
    assert torch.allclose(c_in * (sigma**2 + 0.25).sqrt(), torch.ones(3))
    assert torch.allclose(weight * c_out**2, torch.ones(3))  # EDM: λ c_out² = 1, the effective target has unit weight


def test_the_network_sees_only_the_masked_input():
    """Whatever the hidden pixels of x_t hold, the estimate is the same: nothing leaks around the mask."""
    sde, net = VPSDE(), TinyDenoiser()
    x_t = torch.randn(5, 1, 2, 2)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2).expand(5, 1, 2, 2)
    t = torch.full((5,), 0.4)
    other = x_t + (1 - mask) * 3.0
    assert torch.equal(ambient_denoise(net, sde, x_t, mask, t, 0.5), ambient_denoise(net, sde, other, mask, t, 0.5))


@pytest.mark.slow
def test_the_ambient_loss_learns_the_optimal_denoiser_where_the_naive_loss_does_not(one_thread):
    sde, gen = VPSDE(), rng.generator(1)
    x = gaussian(20000, gen)
    observed = (rng.rand((20000, 1, 2, 2), gen) >= 0.5).float()  # every image half-observed (MCAR)
    evalgen = rng.generator(3)
    x0 = gaussian(2000, evalgen)
    t = torch.full((2000,), 0.1)  # low noise: where hidden pixels must come from the visible ones
    x_t = sde.marginal(x0, t, rng.randn_like(x0, evalgen))
    mask = (rng.rand((2000, 1, 2, 2), evalgen) >= 0.5).float()
    sigma_e = float(sde.sigma(t[:1]) / sde.alpha(t[:1]))
    target = optimal_denoiser(x_t / sde.alpha(t[:1]), mask, sigma_e)
    hidden = mask == 0
    errors = {}
    for name, delta in (("ambient", 0.2), ("naive", 0.0)):
        torch.manual_seed(0)
        net = TinyDenoiser()
        net, _ = train(net, ambient_loss(net, sde, LossConfig(time_dist="logsnr"), delta, 0.5), (x, observed),
                       TrainConfig(steps=5000, batch_size=256, lr=2e-3, ema_decay=0.99), rng.generator(2), progress=False)
        with torch.no_grad():
            pred = ambient_denoise(net, sde, x_t, mask, t, 0.5)
        errors[name] = float(((pred - target)[hidden] ** 2).mean())
    prior_only = float(((target - MU.view(1, 1, 2, 2))[hidden] ** 2).mean())  # what ignoring the visible pixels costs
    assert errors["ambient"] < 0.15 * prior_only, (errors, prior_only)
    assert errors["naive"] > 3 * errors["ambient"], (errors, prior_only)


def test_sampling_masks_keep_the_training_survival_and_stay_fixed_for_a_solve(fitted, small_batch):
    model = fitted["ambient"]
    x, m = small_batch
    assert model.sampling_survival() == pytest.approx(float(m[:, :1].mean()) * (1 - model.config.delta))
    score = model._score(rng.generator(0))
    z = torch.randn(400, 1, 28, 28)
    first = score.masks_for(z)
    score(z, torch.full((400,), 0.5))
    assert score.masks_for(z) is first  # one mask per chain for the whole solve
    assert abs(float(first.mean()) - model.sampling_survival()) < 0.01
    a = model.sample(3, seed=4, progress=False)
    assert np.array_equal(a, model.sample(3, seed=4, progress=False))


def test_the_hidden_pixel_weight_option_changes_only_the_further_hidden_pixels():
    """``hidden_weight``: with nothing further hidden (δ = 0) both weightings are the same loss; with
    δ > 0 'unit' gives the further-hidden pixels EDM's unit effective weight instead of λ."""
    sde, net = VPSDE(), TinyDenoiser()
    x = torch.randn(64, 1, 2, 2)
    mask = (torch.rand(64, 1, 2, 2, generator=torch.Generator().manual_seed(0)) > 0.3).float()
    cfg = LossConfig(time_dist="logsnr")
    losses = {w: [float(ambient_loss(net, sde, cfg, d, 0.5, hidden_weight=w)(x, mask, rng.generator(5)))
                  for d in (0.0, 0.5)] for w in ("lambda", "unit")}
    assert losses["lambda"][0] == pytest.approx(losses["unit"][0])
    assert losses["lambda"][1] != pytest.approx(losses["unit"][1])


def test_training_sampling_masks_come_from_the_training_masks_with_delta_more_hidden(fitted, small_batch, tmp_path):
    """``sampling_masks = "training"``: every chain's mask is a training image's mask (a half-image
    mask stays a half-image mask) with about δ of its observed pixels further hidden."""
    from ldmiss.methods import get_method_class, load_method
    from tests.conftest import TINY
    x, _ = small_batch
    half = torch.zeros_like(x)
    half[..., :14, :] = 1.0  # the top half observed, as the "half" mechanism does
    model = get_method_class("ambient")(None, device="cpu", **TINY["ambient"], delta=0.2,
                                        sampling_masks="training").fit(x * half, half, seed=0, progress=False)
    score = model._score(rng.generator(0))
    masks = score.masks_for(torch.zeros(2000, 1, 28, 28))
    assert masks[..., 14:, :].sum() == 0  # never a pixel the training masks lacked
    assert float(masks[..., :14, :].mean()) == pytest.approx(0.8, abs=0.02)
    model.sample(3, seed=0, progress=False)
    # a saved model keeps its masks; one saved before they existed loads and refuses "training"
    model.save(tmp_path / "m")
    assert torch.equal(load_method(tmp_path / "m", device="cpu").mask_bank, model.mask_bank)
    old = fitted["ambient"]
    tensors = {k: v for k, v in old.state_tensors().items() if k != "mask_bank"}
    fresh = get_method_class("ambient")(None, device="cpu", **TINY["ambient"], sampling_masks="training")
    fresh._build(old.image_shape)
    fresh.load_state_tensors(tensors)
    with pytest.raises(UsageError, match="without its training masks"):
        fresh._score(rng.generator(0))


def test_each_batch_of_a_sampling_call_draws_its_own_masks(fitted):
    """Chains in different batches of one call must not share masks (they did: one draw per call)."""
    model = fitted["ambient"]
    drawn = []
    original = model._score

    def spy(generator=None):
        score = original(generator)
        drawn.append(score)
        return score
    model._score = spy
    try:
        model.sample(2 * model.config.sampler.batch_size, seed=0, progress=False)
    finally:
        del model._score
    assert len(drawn) == 2 and not torch.equal(drawn[0].mask, drawn[1].mask)
