"""The masked DSM loss ignores missing pixels; a self-guidance step reduces the observed-pixel error."""
import torch

from ldmiss.diffusion import VPSDE, SelfGuidance, dsm_loss

sde = VPSDE()


class PixelwiseNet(torch.nn.Module):
    """ε-prediction that depends on each pixel alone, so a missing pixel cannot leak into others."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.7))

    def forward(self, x, t):
        return self.w * x * (1 + t[:, None, None, None])


def test_masked_loss_ignores_missing_pixels():
    x0 = torch.rand(8, 1, 6, 6)
    m = (torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    changed = torch.where(m > 0, x0, torch.randn_like(x0) * 10)
    net = PixelwiseNet()
    l1 = dsm_loss(net, sde, x0, m, torch.Generator().manual_seed(1))
    l2 = dsm_loss(net, sde, changed, m, torch.Generator().manual_seed(1))
    assert torch.equal(l1, l2)
    # and the unmasked loss does see them
    l3 = dsm_loss(net, sde, changed, None, torch.Generator().manual_seed(1))
    assert not torch.equal(l1, l3)


def test_masked_loss_gradient_is_zero_on_missing_outputs():
    x0, m = torch.rand(4, 1, 5, 5), (torch.rand(4, 1, 5, 5) > 0.5).float()
    out = {}

    def eps_fn(x, t):
        out["y"] = torch.zeros_like(x, requires_grad=True)
        return out["y"]

    dsm_loss(eps_fn, sde, x0, m, torch.Generator().manual_seed(0)).backward()
    assert torch.all(out["y"].grad[m == 0] == 0)
    assert torch.all(out["y"].grad[m == 1] != 0)


def _gaussian_setup():
    mu = torch.zeros(1, 1, 4, 4)
    score = lambda x, t: -(x - sde.alpha(t)[:, None, None, None] * mu)  # unit-variance Gaussian data
    decode = lambda z: torch.sigmoid(2 * z)
    g = torch.Generator().manual_seed(0)
    x_obs = torch.rand(6, 1, 4, 4, generator=g)
    m = (torch.rand(6, 1, 4, 4, generator=g) > 0.4).float()
    return score, decode, x_obs, m


def test_guidance_step_reduces_observed_error():
    score, decode, x_obs, m = _gaussian_setup()
    guide = SelfGuidance(score, sde, decode, x_obs, m, weight=1.0, norm_match=True)
    t = torch.full((6,), 0.3)
    x = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))

    def err(z):
        return ((m * (x_obs - decode(sde.tweedie(z, score(z, t), t)))) ** 2).flatten(1).sum(1)

    _, gterm = guide.guidance_term(x, t)
    assert torch.all(err(x + 1e-3 * gterm) < err(x))


def test_norm_matching_and_unobserved_images():
    score, decode, x_obs, m = _gaussian_setup()
    m[0] = 0  # image 0 has no observed pixel: no guidance, only the prior
    t = torch.full((6,), 0.5)
    x = torch.randn(6, 1, 4, 4)
    s_u, g = SelfGuidance(score, sde, decode, x_obs, m).guidance_term(x, t)
    assert torch.all(g[0] == 0)
    assert torch.allclose(g[1:].flatten(1).norm(dim=1), s_u[1:].flatten(1).norm(dim=1), rtol=1e-5)
    s_raw, g_raw = SelfGuidance(score, sde, decode, x_obs, m, norm_match=False).guidance_term(x, t)
    assert not torch.allclose(g_raw[1:].flatten(1).norm(dim=1), s_raw[1:].flatten(1).norm(dim=1))
    guided = SelfGuidance(score, sde, decode, x_obs, m, weight=2.0)(x, t)
    assert torch.allclose(guided, s_u + 2.0 * g, atol=1e-6)


def test_grad_through_score_switch_changes_gradient():
    net = torch.nn.Linear(16, 16)
    score = lambda x, t: net(x.flatten(1)).view_as(x)
    _, decode, x_obs, m = _gaussian_setup()
    t, x = torch.full((6,), 0.5), torch.randn(6, 1, 4, 4)
    _, g1 = SelfGuidance(score, sde, decode, x_obs, m, norm_match=False, grad_through_score=True).guidance_term(x, t)
    _, g2 = SelfGuidance(score, sde, decode, x_obs, m, norm_match=False, grad_through_score=False).guidance_term(x, t)
    assert not torch.allclose(g1, g2)
