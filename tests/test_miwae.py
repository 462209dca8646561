"""MIWAE and not-MIWAE on known cases: the self-masking model's closed form, the bound tightening
with K, importance resampling as a posterior draw, and not-MIWAE finding the direction of a
self-masking mechanism that MIWAE (assuming MAR) cannot see."""
import math

import pytest
import torch

from ldmiss import rng
from ldmiss.methods import get_method_class
from ldmiss.methods.miwae import log_weights
from ldmiss.nets.missingness import SelfMasking


def test_self_masking_is_the_papers_logistic():
    sm = SelfMasking((1, 2, 2))
    with torch.no_grad():
        sm.w.fill_(2.0)
        sm.b.fill_(0.5)
    x = torch.ones(1, 1, 2, 2)
    m = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    expected = 3 * math.log(torch.sigmoid(torch.tensor(-1.0))) + math.log(torch.sigmoid(torch.tensor(1.0)))
    assert float(sm.log_prob(m, x)) == pytest.approx(expected, rel=1e-6)
    known = SelfMasking((1, 2, 2), shared=True, known_sign=True)
    assert known.w.shape == (1, 1, 1) and float(known.weight()) == pytest.approx(math.log(2.0))  # softplus(0)


def _blobs(n, seed):
    """4×4 grey images: one random brightness per image plus small noise (a 1-d latent world)."""
    g = torch.Generator().manual_seed(seed)
    level = torch.rand(n, 1, 1, 1, generator=g) * 0.6 + 0.2
    return (level + 0.03 * torch.randn(n, 1, 4, 4, generator=g)).clamp(0, 1)


def _fit(name, x, m, steps=300, **vae_extra):
    cfg = {"vae": {"width": 8, "latent_channels": 1, "iw_samples": 8, "likelihood": "gaussian",
                   "train": {"steps": steps, "batch_size": 64, "lr": 3e-3}, **vae_extra}, "impute_samples": 64}
    return get_method_class(name)(None, device="cpu", **cfg).fit(x * m, m, seed=0, progress=False)


def test_the_bound_tightens_with_k_and_resampling_follows_the_weights():
    x = _blobs(256, 0)
    m = (torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    model = _fit("miwae", x, m, steps=150)
    bounds = []
    for k in (1, 8, 64):
        g = rng.generator(3)
        with torch.no_grad():
            log_w, _ = log_weights(model.vae, x * m, m, k, g)
        bounds.append(float((torch.logsumexp(log_w, 0) - math.log(k)).mean()))
    assert bounds[0] < bounds[1] < bounds[2], bounds  # L_1 ≤ L_8 ≤ L_64 (Burda et al.)
    res = model.impute((x * m).numpy(), m.numpy(), draws=4, seed=0)
    assert res.std is not None and float(torch.as_tensor(res.std).max()) > 0  # draws differ: posterior draws
    single = model.single_imputation((x * m).numpy(), m.numpy())
    err = ((single - x) ** 2 * (1 - m)).sum() / (1 - m).sum()
    assert float(err) < 0.01  # a 1-d world: the observed pixels pin the level down


def test_not_miwae_finds_the_direction_of_self_masking_and_imputes_brighter():
    """Brighter pixels go missing more (p(observed | x) = σ(−12 (x − 0.5))): MIWAE, assuming MAR, fills
    holes from the observed (darker) pixels; not-MIWAE learns W > 0 and shifts its fills up."""
    x = _blobs(768, 4)
    g = torch.Generator().manual_seed(5)
    m = (torch.rand(x.shape, generator=g) < torch.sigmoid(-12 * (x - 0.5))).float()
    mar = _fit("miwae", x, m)
    mnar = _fit("notmiwae", x, m, missingness_shared=True)
    assert float(mnar.missingness.weight()) > 0.3  # the learnt mechanism points the right way (0.67 here)
    hole = (1 - m).bool()
    filled = {name: model.single_imputation((x * m).numpy(), m.numpy()) for name, model in
              (("miwae", mar), ("notmiwae", mnar))}
    fill = {name: float(f[hole].mean()) for name, f in filled.items()}
    truth = float(x[hole].mean())
    assert fill["miwae"] < fill["notmiwae"] <= truth + 0.05, (fill, truth)
    err = {name: float(((f - x) ** 2)[hole].mean()) for name, f in filled.items()}
    assert err["notmiwae"] < 0.7 * err["miwae"], err  # 0.0068 against 0.0143 at 300 steps
