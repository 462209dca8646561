"""MCAR masks and the public input validation (every bad input gets a clear error)."""
import numpy as np
import pytest
import torch

from ldmiss.inputs import InputError, prepare_images
from ldmiss.missing import apply_mask, make_mask, mcar_mask


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.8, 1.0])
def test_mcar_rate_and_reproducibility(rate):
    m = mcar_mask((200, 1, 28, 28), rate, seed=3)
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs((1 - m.mean().item()) - rate) < 0.01
    assert torch.equal(m, mcar_mask((200, 1, 28, 28), rate, seed=3))
    if 0 < rate < 1:
        assert not torch.equal(m, mcar_mask((200, 1, 28, 28), rate, seed=4))


def test_mask_shared_across_channels_and_bad_rate():
    m = make_mask("mcar", (4, 3, 8, 8), 0.5, seed=0)
    assert torch.equal(m[:, 0], m[:, 1]) and torch.equal(m[:, 1], m[:, 2])
    with pytest.raises(ValueError):
        mcar_mask((1, 1, 2, 2), 1.5)
    with pytest.raises(ValueError, match="mechanism"):
        make_mask("mnar", (1, 1, 2, 2), 0.5, seed=0)


def test_apply_mask_zero_imputes():
    x, m = torch.rand(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) > 0.5).float()
    xt = apply_mask(x, m)
    assert torch.all(xt[m == 0] == 0) and torch.equal(xt[m == 1], x[m == 1])


def test_uint8_and_nan_conventions():
    x = np.full((2, 28, 28), 255, np.uint8)
    xt, m = prepare_images(x, image_shape=(1, 28, 28))
    assert xt.shape == (2, 1, 28, 28) and torch.all(xt == 1) and torch.all(m == 1)
    xf = np.random.rand(2, 1, 28, 28).astype(np.float32)
    xf[0, 0, 3, 4] = np.nan
    xt, m = prepare_images(xf)
    assert m[0, 0, 3, 4] == 0 and xt[0, 0, 3, 4] == 0 and m.sum() == 2 * 784 - 1


@pytest.mark.parametrize("x,mask,match", [
    (np.zeros((2, 1, 27, 28)), None, "shape"),
    (np.zeros((2, 3, 28, 28)), None, "shape"),
    (np.zeros((2, 28, 28, 1)), None, "channels-last"),
    (np.zeros(28 * 28), None, "N×H×W"),
    (np.full((2, 28, 28), 2.0), None, r"\[0, 1\]"),
    (np.full((2, 28, 28), 200.0), None, "0–255"),
    (np.full((2, 28, 28), -0.1), None, r"\[0, 1\]"),
    (np.full((2, 28, 28), np.inf), None, "inf"),
    (np.zeros((0, 28, 28)), None, "empty"),
    (np.zeros((2, 28, 28), np.int64) + 300, None, "0–255"),
    (np.array([["a"]]), None, "numeric"),
    (np.ones((2, 28, 28), np.uint8), None, "only 0 and 1"),
    (np.zeros((2, 28, 28)), np.ones((2, 28, 27)), "obs_mask"),
    (np.zeros((2, 28, 28)), np.full((2, 28, 28), 0.5), "binary"),
    (np.full((2, 28, 28), np.nan), np.ones((2, 28, 28)), "NaN at pixels"),
])
def test_bad_inputs_are_rejected_clearly(x, mask, match):
    with pytest.raises(InputError, match=match):
        prepare_images(x, mask, image_shape=(1, 28, 28))


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (2, 28, 28, 3), (2, 28, 28, 4)])
def test_channels_last_is_refused_at_fit_too(shape):
    with pytest.raises(InputError, match="channels-last"):
        prepare_images(np.zeros(shape, np.float32))


def test_bool_mask_and_nan_plus_mask():
    x = np.random.rand(2, 28, 28)
    x[0, 0, 0] = np.nan
    mask = np.ones((2, 28, 28), bool)
    mask[0, 0, 0] = False
    mask[1, 5, 5] = False
    xt, m = prepare_images(x, mask)
    assert m[0, 0, 0, 0] == 0 and m[1, 0, 5, 5] == 0 and xt[1, 0, 5, 5] == 0
