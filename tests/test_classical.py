"""The classical baselines (methods/classical.py) on cases whose answer is known: smooth intensities
they must reconstruct, constants they must keep exactly, a fill small enough to work out by hand,
colour channels that must not mix, and images with nothing observed."""
import math

import numpy as np
import pytest
import torch

from ldmiss.config import ConfigError
from ldmiss.methods import Biharmonic, Neighbours, get_method_class
from ldmiss.methods.classical import biharmonic_fill, neighbour_fill

CLASSICAL = ["biharmonic", "neighbours"]


def _grid(h=28, w=28):
    return torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")


def _ramp(n=2, h=28, w=28):
    """A linear intensity 0.2 + 0.3·x + 0.4·y (values in [0.2, 0.9])."""
    yy, xx = _grid(h, w)
    return (0.2 + 0.3 * xx + 0.4 * yy).expand(n, 1, h, w).clone()


def _mcar(shape, rate=0.5, seed=0):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) >= rate).float()


def _fit(name, x, m, **overrides):
    return get_method_class(name)(None, device="cpu", **overrides).fit(x * m, m, progress=False)


def _impute(model, x, m):
    return torch.from_numpy(model.impute(x * m, m, progress=False).mean)


def test_neighbour_fill_by_hand():
    """3×3 image, two corners observed. Round 1 fills the pixels next to a corner from the observed
    ones only (the centre sees both: (0.9 + 0.3)/2), round 2 the other corners from round 1's
    fills: each new value is the mean of the pixels known *before* its round."""
    x = torch.tensor([[0.9, 0, 0], [0, 0, 0], [0, 0, 0.3]]).reshape(1, 1, 3, 3)
    m = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 1]]).reshape(1, 1, 3, 3)
    out, rounds = neighbour_fill(x, m, torch.zeros(1, 3, 3))
    expected = torch.tensor([[0.9, 0.9, 0.6], [0.9, 0.6, 0.3], [0.6, 0.3, 0.3]])
    assert rounds == 2 and torch.allclose(out[0, 0], expected, atol=1e-6)


@pytest.mark.parametrize("radius,rounds", [(1, 27), (2, 14), (3, 9)])
def test_neighbour_fill_converges_in_depth_over_radius_rounds(radius, rounds):
    """One observed pixel in a corner of a 28×28 image: the farthest pixel is 27 steps away, so the
    fill takes ⌈27 / radius⌉ rounds, leaves nothing missing and spreads that one value."""
    x = torch.zeros(1, 1, 28, 28)
    m = torch.zeros_like(x)
    x[0, 0, 0, 0], m[0, 0, 0, 0] = 0.7, 1
    out, k = neighbour_fill(x, m, torch.zeros(1, 28, 28), radius)
    assert k == rounds == math.ceil(27 / radius)
    assert torch.allclose(out, torch.full_like(out, 0.7), atol=1e-6)
    model = _fit("neighbours", x, m, radius=radius)
    assert model.impute(x, m, progress=False).cost.steps == rounds


def test_neighbour_fill_keeps_known_values_bit_for_bit():
    """Checked on the fill itself, since impute() would paste the observed pixels back over a bug."""
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    m = _mcar(x.shape, 0.7)
    out, _ = neighbour_fill(x * m, m, torch.zeros(3, 16, 16))
    assert torch.equal(out[m > 0], x[m > 0]) and torch.isfinite(out).all()


def test_neighbours_on_a_checkerboard_is_exact_for_a_linear_image():
    """In a checkerboard every missing pixel's known 3×3 neighbours are its four edge neighbours,
    symmetric about it, and their mean is a linear function's value there: exact inside the image
    (the border pixels see a lopsided window)."""
    x = _ramp(1)
    yy, xx = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    m = ((yy + xx) % 2 == 0).float().expand_as(x).clone()
    out = _impute(_fit("neighbours", x, m), x, m)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert (out - x)[inner].abs().max() < 1e-6
    assert (out - x).abs().max() > 1e-3  # the border is not exact: the check above is not vacuous


def test_interior_hole_in_a_linear_image():
    """A 12×12 hole well inside a linear image: biharmonic inpainting reproduces it (a linear function
    is biharmonic). The neighbour fill only spreads the hole's rim inwards, so it is off by up to the
    slope (0.3/27 + 0.4/27 per pixel, along a diagonal) times the depth of the hole (6): bounded, but
    far from exact — the weakness that scattered holes (below) hide."""
    x = _ramp(2)
    m = torch.ones_like(x)
    m[..., 8:20, 8:20] = 0
    err = {name: (_impute(_fit(name, x, m), x, m) - x)[m == 0].abs().max() for name in CLASSICAL}
    assert err["biharmonic"] < 1e-5
    assert 0.02 < err["neighbours"] < 0.7 / 27 * 6


def test_biharmonic_reproduces_a_quadratic_image():
    """The discrete biharmonic operator vanishes on quadratics too: still exact inside."""
    yy, xx = _grid()
    x = (0.1 + 0.5 * xx ** 2 + 0.3 * xx * yy + 0.2 * yy ** 2 - 0.1 * yy).expand(1, 1, 28, 28).clone()
    m = torch.ones_like(x)
    m[..., 6:22, 9:19] = 0
    out = _impute(_fit("biharmonic", x, m), x, m)
    assert (out - x)[m == 0].abs().max() < 1e-5


@pytest.mark.parametrize("name,tol", [("biharmonic", 2e-5), ("neighbours", 2e-4)])
def test_scattered_pixels_of_a_linear_image(name, tol):
    """Half the pixels missing at random: both fills are close to the truth (MSE in [0, 1]² scale),
    some ten to a thousand times closer than the per-pixel mean."""
    x = _ramp(4)
    m = _mcar(x.shape)
    mse = lambda out: float(((out - x) ** 2)[m == 0].mean())
    assert mse(_impute(_fit(name, x, m), x, m)) < tol < mse(_impute(_fit("mean", x, m), x, m)) / 5


@pytest.mark.parametrize("name", CLASSICAL)
def test_constant_channels_stay_constant(name):
    """Each RGB channel a different constant, holes scattered and one large block: every missing
    pixel gets its own channel's constant (a fill that mixed channels would not)."""
    levels = torch.tensor([0.1, 0.5, 0.85]).reshape(1, 3, 1, 1)
    x = levels.expand(3, 3, 20, 24).clone()
    m = _mcar(x.shape, 0.6)
    m[:, :, 4:16, 5:15] = 0
    out = _impute(_fit(name, x, m), x, m)
    assert (out - x).abs().max() < 1e-6


@pytest.mark.parametrize("name", CLASSICAL)
def test_rgb_keeps_observed_pixels_and_fills_each_channel_from_itself(name):
    """Random RGB images with per-channel masks: observed pixels come back bit for bit, and the fill
    of a channel equals filling that channel alone as a grey image."""
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    m = _mcar(x.shape, 0.5, seed=2)
    rgb = _fit(name, x, m)
    out = rgb.impute(x * m, m, progress=False).mean
    assert out.shape == (2, 3, 16, 16) and np.array_equal(out[m.numpy() == 1], x.numpy()[m.numpy() == 1])
    for c in range(3):
        xc, mc = x[:, c:c + 1], m[:, c:c + 1]
        grey = _fit(name, xc, mc).impute(xc * mc, mc, progress=False).mean
        assert np.allclose(out[:, c:c + 1], grey, atol=1e-6), c


def test_biharmonic_solves_shared_masks_together_and_per_channel_masks_apart():
    """Channels with one mask go to scikit-image as one multichannel solve, channels with their own
    masks one by one; both give what the grey solves give, to rounding."""
    rng = np.random.default_rng(0)
    image = rng.random((3, 14, 14))
    shared = np.broadcast_to(rng.random((1, 14, 14)) < 0.4, image.shape)
    apart = rng.random(image.shape) < 0.4
    fallback = np.zeros_like(image)
    for missing in (shared, apart):
        out = biharmonic_fill(image, missing, fallback)
        for c in range(3):
            grey = biharmonic_fill(image[c:c + 1], missing[c:c + 1], fallback[c:c + 1])
            assert np.allclose(out[c], grey[0], atol=1e-12)
        assert np.array_equal(out[~missing], image[~missing])


@pytest.mark.parametrize("name", CLASSICAL)
def test_nothing_observed_falls_back_to_the_learnt_pixel_mean(name):
    """An image with no observed pixel gets the per-pixel mean of the observed training values (what
    the fit learns, as ``mean`` computes it), with the usual warning; so does a channel with nothing
    observed in an image whose other channels are filled from themselves."""
    x = torch.rand(8, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    m = _mcar(x.shape, 0.5, seed=4)
    model = _fit(name, x, m)
    assert torch.allclose(model.pixel_mean, get_method_class("mean")().fit(x * m, m, progress=False).pixel_mean)
    test = torch.full((2, 3, 12, 12), 0.4)
    tm = torch.ones_like(test)
    tm[0] = 0  # nothing observed
    tm[1, 2] = 0  # the blue channel unobserved
    with pytest.warns(UserWarning, match="1 image"):
        out = _impute(model, test, tm)
    pm = model.pixel_mean
    assert torch.allclose(out[0], pm) and torch.allclose(out[1, 2], pm[2])
    assert torch.allclose(out[1, :2], test[1, :2])


def test_options_and_their_effect():
    """``radius`` widens the window (a different fill), and is checked when the method is built."""
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    m = _mcar(x.shape, 0.6)
    narrow, wide = _impute(_fit("neighbours", x, m), x, m), _impute(_fit("neighbours", x, m, radius=2), x, m)
    assert not torch.allclose(narrow, wide)
    with pytest.raises(ConfigError, match="radius"):
        Neighbours(radius=0)
    batched = _impute(_fit("neighbours", x, m, batch_size=1), x, m)
    assert torch.allclose(batched, narrow)  # batching is memory only
    assert not Biharmonic.generative and not Neighbours.stochastic and Biharmonic.relative_cost == 0


@pytest.mark.parametrize("how", ["neighbours", "biharmonic"])
def test_refining_by_the_residual_removes_a_smooth_error_and_keeps_the_decoders_detail(how):
    """refine_residual: a decoded image off by a smooth field (an offset; for biharmonic, a gradient
    too) is corrected where the interpolator reproduces that field; with no error, the decoder's own
    detail is left untouched."""
    from ldmiss.methods.classical import refine_residual
    from ldmiss.missing import mcar_mask
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=g) * 0.5 + 0.25  # rough, high-frequency "photos"
    m = mcar_mask(x.shape, 0.5, seed=1)
    yy = torch.linspace(0, 1, 16)[:, None].expand(16, 16)
    offset = 0.1 + 0.05 * yy if how == "biharmonic" else torch.full((16, 16), 0.1)  # neighbours: exact for a constant
    decoded = x + offset
    refined = refine_residual(decoded, x * m, m, how)
    missing = m == 0
    assert (decoded - x)[missing].abs().mean() > 0.09
    # neighbours: exact for the constant; biharmonic: within its boundary handling (50× below the error)
    assert (refined - x)[missing].abs().max() < (1e-4 if how == "neighbours" else 2e-3)
    assert torch.equal(refine_residual(x, x * m, m, how), x)  # nothing to correct: the detail stays
    assert torch.equal(refine_residual(decoded, x * m, m, "none"), decoded)
