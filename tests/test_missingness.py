"""The missingness model p(m | x) (nets/missingness.py) against closed forms, and its use in the β-VAE's
bound and in self-guidance: the missing values integrated out exactly (Bernoulli) or by the probit
approximation (Gaussian), its gradients by finite differences, the bound's extra term, and LDMiss
with the model imputing brighter where brighter pixels go missing."""
import itertools
import math

import pytest
import torch

from ldmiss import rng
from ldmiss.errors import UsageError
from ldmiss.methods import get_method_class
from ldmiss.nets.likelihoods import Likelihood
from ldmiss.nets.missingness import SelfMasking, build_missingness
from ldmiss.nets.vae import VAE


def _model(shape, w, b, known_sign=False):
    sm = SelfMasking(shape, known_sign=known_sign).double()
    with torch.no_grad():
        sm.w.copy_(torch.as_tensor(w, dtype=torch.float64).view(shape))
        sm.b.copy_(torch.as_tensor(b, dtype=torch.float64).view(shape))
    return sm


def test_bernoulli_missing_values_are_summed_out_exactly():
    """log p(m | x_o, z) = log Σ_{x_m ∈ {0,1}^|mis|} p(m | x) Π p(x_d | z), by enumeration of 3 pixels."""
    shape = (1, 1, 3)
    sm = _model(shape, [3.0, -2.0, 0.5], [0.4, 0.6, 0.2])
    mask = torch.tensor([[[[1.0, 0.0, 0.0]]]], dtype=torch.float64)
    x_obs = torch.tensor([[[[0.7, 0.0, 0.0]]]], dtype=torch.float64)
    mean = torch.tensor([[[[0.5, 0.9, 0.3]]]], dtype=torch.float64)
    total = 0.0
    for v1, v2 in itertools.product((0.0, 1.0), repeat=2):
        x = torch.tensor([[[[0.7, v1, v2]]]], dtype=torch.float64)
        prior = (0.9 if v1 else 0.1) * (0.3 if v2 else 0.7)
        total += prior * math.exp(float(sm.log_prob(mask, x)))
    got = sm.log_prob_expected(mask, x_obs, mean, Likelihood("bernoulli"))
    assert float(got) == pytest.approx(math.log(total), rel=1e-10)


def test_gaussian_missing_values_follow_the_probit_approximation():
    """E σ(a), a ~ N: the probit approximation is within 2% of a Monte-Carlo mean (it is ≈ 1% at worst)."""
    sm = _model((1, 1, 2), [4.0, -6.0], [0.5, 0.3])
    lik = Likelihood("gaussian").double()
    with torch.no_grad():
        lik.log_scale.fill_(math.log(0.2))
    mask = torch.zeros(1, 1, 1, 2, dtype=torch.float64)
    mean = torch.tensor([[[[0.6, 0.2]]]], dtype=torch.float64)
    got = math.exp(float(sm.log_prob_expected(mask, torch.zeros_like(mean), mean, lik)))
    g = torch.Generator().manual_seed(0)
    x = mean + 0.2 * torch.randn(400_000, 1, 1, 2, generator=g, dtype=torch.float64)
    mc = torch.sigmoid(sm.weight() * (x - sm.b)).prod(-1).mean()  # both pixels missing: p(m_d = 0 | x_d)
    assert got == pytest.approx(float(mc), rel=0.02)


def test_missingness_gradients_match_finite_differences():
    sm = _model((1, 2, 2), [1.5, -0.5, 2.0, 0.3], [0.2, 0.8, 0.5, 0.1], known_sign=True)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]], dtype=torch.float64)
    x_obs = torch.rand(1, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * mask
    mean = torch.tensor([[[[0.3, 0.7], [0.9, 0.4]]]], dtype=torch.float64, requires_grad=True)
    lik = Likelihood("bernoulli")
    assert torch.autograd.gradcheck(
        lambda w, b, mu: SelfMasking.log_prob_expected(_with(sm, w, b), mask, x_obs, mu, lik),
        (sm.w.detach().clone().requires_grad_(), sm.b.detach().clone().requires_grad_(), mean))


def _with(sm, w, b):
    """``sm`` with its parameters replaced by the tensors ``w``, ``b`` (for gradcheck)."""
    clone = SelfMasking(tuple(w.shape), known_sign=sm.known_sign)
    del clone.w, clone.b
    clone.w, clone.b = w, b
    return clone


def test_the_bound_gains_exactly_the_missingness_term():
    """Same draws (same seed): the negative bound with the model = without it − log p(m | x_o, z)."""
    torch.manual_seed(0)
    vae = VAE(1, 2, 8, True, "bernoulli")
    model = build_missingness("selfmask", (1, 8, 8))
    with torch.no_grad():
        model.w.normal_()
        model.b.uniform_()
    x = torch.rand(6, 1, 8, 8)
    m = (torch.rand(6, 1, 8, 8) > 0.4).float()
    plain = vae.loss(x * m, m, 1.0, 1, rng.generator(3))
    vae.missingness = model
    with_model = vae.loss(x * m, m, 1.0, 1, rng.generator(3))
    _, _, _, _, out = vae._draw(x * m, m, 1, rng.generator(3))
    term = model.log_prob_expected(m, x * m, vae.likelihood.mean(out), vae.likelihood).mean()
    assert float(with_model) == pytest.approx(float(plain - term), rel=1e-5)
    assert build_missingness("none", (1, 8, 8)) is None
    with pytest.raises(UsageError, match="selfmask"):
        build_missingness("logistic", (1, 8, 8))


def _blobs(n, seed):
    """4×4 images of one grey level each (a 1-d world), the brighter the more often missing."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 1, 1, 1, generator=g) * 0.6 + 0.2 + 0.03 * torch.randn(n, 1, 4, 4, generator=g)).clamp(0, 1)
    m = (torch.rand(x.shape, generator=g) < torch.sigmoid(-12 * (x - 0.5))).float()
    return x, m


def test_ldmiss_with_a_missingness_model_guides_toward_what_goes_missing():
    """Trained on self-masked blobs, ldmiss-mnar learns W > 0; its guidance's missingness term then
    fills holes brighter than the same model's guidance without it — the direction the truth lies."""
    x, m = _blobs(512, 0)
    cfg = {"vae": {"width": 8, "latent_channels": 1, "likelihood": "gaussian", "missingness_shared": True,
                   "train": {"steps": 300, "batch_size": 64, "lr": 3e-3}},
           "prior": {"net": {"width": 32, "depth": 2}, "train": {"steps": 300, "batch_size": 128},
                     "sampler": {"steps": 20}}}
    model = get_method_class("ldmiss-mnar")(None, device="cpu", **cfg).fit(x * m, m, seed=0, progress=False)
    assert float(model.vae.missingness.weight()) > 0.3  # the learnt mechanism points the right way
    hole = (1 - m).bool()
    fills = {}
    for lam in (0.0, 0.5):
        model.set_inference_options({"impute": {"guidance": {"missingness_weight": lam}}})
        fills[lam] = float(torch.as_tensor(model.impute((x * m).numpy(), m.numpy(), seed=1).mean)[hole].mean())
    truth = float(x[hole].mean())
    assert fills[0.5] > fills[0.0] + 0.01, (fills, truth)  # 0.646 against 0.527 (truth 0.620)
    assert abs(fills[0.5] - truth) < abs(fills[0.0] - truth), (fills, truth)
    with pytest.raises(UsageError, match="missingness"):
        get_method_class("ldmiss-mnar")(None, device="cpu", vae={"missingness": "none"})


def test_the_importance_weighted_bound_reaches_the_exact_log_likelihood_as_k_grows():
    """A 1-d latent (4×4 images, one latent channel): log p(x_o, m) = log ∫ p(x_o | z) p(m | x_o, z) N(z; 0, 1) dz
    by quadrature on a fine grid, for any decoder. The bound of K importance samples rises with K and
    reaches it (Burda et al. 2016), with and without the missingness term."""
    torch.manual_seed(0)
    vae = VAE(1, 1, 4, True, "gaussian")
    model = build_missingness("selfmask", (1, 4, 4))
    with torch.no_grad():
        model.w.normal_(0.0, 2.0)
        model.b.uniform_()
        vae.likelihood.log_scale.fill_(math.log(0.15))
        vae.decoder.net[0].weight.mul_(8.0)  # pixels that depend strongly on z
        vae.encoder.net[-1].weight.zero_()  # q(z | x̃, m) = N(0, e) for every image: too wide, so the
        vae.encoder.net[-1].bias.copy_(torch.tensor([0.0, 1.0]))  # K = 1 bound is well below log p
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    m = (torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(2)) > 0.4).float()
    x = x * m
    z = torch.linspace(-9, 9, 6001)
    for missingness in (None, model):
        vae.missingness = missingness
        with torch.no_grad():
            out = vae.decoder(z.view(-1, 1, 1, 1))[:, None].expand(len(z), *x.shape)  # grid × N × 1 × 4 × 4
            log_joint = vae.log_observed(out, x, m) - 0.5 * z[:, None] ** 2 - 0.5 * math.log(2 * math.pi)
            exact = torch.logsumexp(log_joint, 0) + math.log(float(z[1] - z[0]))  # N
            bounds = []
            for k, reps in ((1, 4000), (16, 250), (4096, 4)):  # each bound averaged over k·reps draws per image
                log_w, _ = vae.importance_log_weights(x.repeat(reps, 1, 1, 1), m.repeat(reps, 1, 1, 1), k,
                                                      rng.generator(5))
                # importance_log_weights drops the Gaussians' shared constants, which cancel in the ratio
                bounds.append(float((torch.logsumexp(log_w, 0) - math.log(k)).mean()))
        truth = float(exact.mean())
        # L_1 well below (q is too wide: −5.77 against −5.42 here), L_16 and L_4096 within MC noise of it
        assert bounds[0] < bounds[1] - 0.1 and bounds[1] <= bounds[2] + 0.005, (bounds, truth)
        assert truth - 0.02 < bounds[2] <= truth + 0.005, (bounds, truth)
