"""Missingness mechanisms on real digits: one signature, the target rate met, and each mechanism's
defining property (square holes, one missing side, MAR depends only on what is observed, MNAR on
the pixel itself)."""
import pytest
import torch

from ldmiss.missing import MECHANISMS, make_mask, mcar_mask


@pytest.fixture(scope="module")
def digits(mnist_test):
    return torch.from_numpy(mnist_test.images[:400]).float() / 255


@pytest.mark.parametrize("name", sorted(MECHANISMS))
@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_every_mechanism_meets_its_rate_reproducibly(name, rate, digits):
    m = make_mask(name, digits, rate, seed=1)
    assert m.shape == digits.shape and set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs((1 - m.mean().item()) - rate) < 0.03, (name, 1 - m.mean().item())
    assert torch.equal(m, make_mask(name, digits, rate, seed=1))
    rgb = digits.expand(-1, 3, -1, -1)
    m3 = make_mask(name, rgb, rate, seed=1)
    assert torch.equal(m3[:, 0], m3[:, 2])  # a pixel's channels go missing together


def test_mcar_is_the_mask_it_always_was(digits):
    g = torch.Generator().manual_seed(7)
    old = (torch.rand((400, 1, 28, 28), generator=g) >= 0.5).float()
    assert torch.equal(make_mask("mcar", digits, 0.5, seed=7), old)
    assert torch.equal(make_mask("mcar", tuple(digits.shape), 0.5, seed=7), mcar_mask(digits.shape, 0.5, seed=7))


def test_block_holes_are_squares(digits):
    m = make_mask("block", digits[:50], 36 / 784, seed=0, size=6)  # one 6×6 hole reaches the rate
    for img in m[:, 0]:
        rows, cols = (img == 0).nonzero(as_tuple=True)
        assert len(rows) == 36 and rows.max() - rows.min() == 5 and cols.max() - cols.min() == 5


def test_half_removes_one_side(digits):
    m = make_mask("half", digits[:40], 0.5, seed=0, side="left")
    assert (m[:, 0, :, :14] == 0).all() and (m[:, 0, :, 14:] == 1).all()
    sides = make_mask("half", digits, 0.5, seed=0)[:, 0]
    assert len({tuple((s == 0).nonzero()[0].tolist()) for s in sides}) > 1  # random sides differ


def test_mar_depends_only_on_the_always_observed_rows(digits):
    m = make_mask("mar", digits, 0.5, seed=3, observed_rows=7)
    assert (m[:, 0, :7] == 1).all()
    changed = digits.clone()
    changed[:, :, 7:] = torch.rand_like(changed[:, :, 7:])  # change only what may be missing
    assert torch.equal(make_mask("mar", changed, 0.5, seed=3, observed_rows=7), m)
    per_image = 1 - m[:, 0, 7:].mean((1, 2))
    assert per_image.std() > 0.15  # the rate moves with the observed rows, unlike MCAR
    with pytest.raises(ValueError, match="exceeds"):
        make_mask("mar", digits, 0.9, seed=3, observed_rows=7)


def test_mnar_hides_bright_pixels_more(digits):
    m = make_mask("mnar", digits, 0.3, seed=0)
    bright, dark = digits > 0.5, digits < 0.1
    p_bright, p_dark = 1 - m[bright].mean().item(), 1 - m[dark].mean().item()
    assert p_bright > 0.8 and p_dark < 0.2


def test_data_mechanisms_need_data_and_bad_parameters_are_errors(digits):
    with pytest.raises(ValueError, match="depends on the data"):
        make_mask("block", (2, 1, 28, 28), 0.5, seed=0)
    with pytest.raises(ValueError, match="block"):
        make_mask("block", digits, 0.5, seed=0, size=40)
    with pytest.raises(ValueError, match="half"):
        make_mask("half", digits, 0.5, seed=0, side="middle")
    with pytest.raises(ValueError, match="mnar"):
        make_mask("mnar", digits, 0.5, seed=0, colour=2)


def test_training_and_test_mechanisms_are_set_separately():
    from ldmiss.experiments import load_preset
    from ldmiss.experiments.protocol import test_data, training_data
    cfg = load_preset("smoke")
    cfg.test_mechanism, cfg.test_mechanism_params = "half", {"side": "top"}
    x, m = training_data(cfg, 0.5, 0)
    xt, mt = test_data(cfg, 0)
    assert (mt[:, 0, :14] == 0).all() and (mt[:, 0, 14:] == 1).all()  # test: the top half is missing
    assert 0.3 < (m[:, 0, :14] == 0).float().mean() < 0.7  # training: MCAR, no such structure
    cfg.mechanism, cfg.mechanism_params, cfg.test_mechanism = "block", {"size": 7}, ""
    _, mt = test_data(cfg, 0)
    assert abs((1 - mt.mean().item()) - cfg.test_rate) < 0.03  # "" = the training mechanism


def test_mechanism_settings_are_checked_before_any_run():
    from ldmiss.config import ConfigError
    from ldmiss.experiments import load_preset
    cfg = load_preset("smoke")
    cfg.mechanism, cfg.mechanism_params = "block", {"sise": 4}
    with pytest.raises(ConfigError, match="sise"):
        cfg.check()
    cfg.mechanism_params = {"size": 40}
    with pytest.raises(ConfigError, match="size 40"):
        cfg.check()
    cfg.mechanism, cfg.mechanism_params, cfg.test_mechanism = "mcar", {}, "occlusion"
    with pytest.raises(ConfigError, match="test_mechanism"):
        cfg.check()
    cfg.test_mechanism = ""
    assert cfg.check() is cfg  # fixed: it passes again


def test_report_names_the_masks():
    from ldmiss.experiments.results import masking
    assert masking({"mechanism": "mcar"}) == "MCAR masks (training and test)"
    assert masking({"mechanism": "block", "mechanism_params": {"size": 7}}) == "block (size=7) masks (training and test)"
    assert masking({"mechanism": "mcar", "test_mechanism": "half", "test_mechanism_params": {"side": "top"}}) == (
        "training masks MCAR, test masks half (side=top)")
