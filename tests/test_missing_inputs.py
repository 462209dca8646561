"""MCAR masks and the public input validation (every bad input gets a clear error; every dtype is
read by its real range or refused with the fix)."""
import numpy as np
import pytest
import torch

from ldmiss.data import DatasetError, dataset_info, load_dataset
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
    (np.zeros((2, 28, 28), np.int64) + 300, None, "int64 images have no fixed range"),
    (np.array([["a"]]), None, "numeric"),
    (np.ones((2, 28, 28), np.uint8), None, "binary"),
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


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    return msg


def test_unsigned_arrays_are_scaled_by_their_dtype_range_and_bool_is_zero_one():
    x16, m = prepare_images(np.full((2, 4, 4), 32768, np.uint16))
    assert torch.allclose(x16, torch.full_like(x16, 32768 / 65535)) and torch.all(m == 1)
    x8, _ = prepare_images(np.full((2, 4, 4), 51, np.uint8))
    assert torch.allclose(x8, torch.full_like(x8, 0.2))
    xb, _ = prepare_images(np.eye(4, dtype=bool)[None].repeat(2, 0))
    assert xb.dtype == torch.float32 and torch.equal(xb[0, 0], torch.eye(4))
    xt, _ = prepare_images(torch.full((2, 4, 4), 255, dtype=torch.uint8))  # torch tensors follow the same rules
    assert torch.all(xt == 1)
    x32, _ = prepare_images(np.full((1, 4, 4), 2 ** 31, np.uint32))
    assert torch.allclose(x32, torch.full_like(x32, 2 ** 31 / (2 ** 32 - 1)))
    xf, _ = prepare_images(np.full((1, 4, 4), 0.25, np.float64))
    assert torch.all(xf == 0.25)


def test_uint16_arrays_no_longer_fail_inside_torch():
    """Defect 3: a uint16 array gave torch's '"min_all" not implemented for 'UInt16''."""
    x, _ = prepare_images(np.array([[[0, 65535], [32768, 16384]]], np.uint16))
    assert torch.allclose(x[0, 0], torch.tensor([[0, 1], [32768 / 65535, 16384 / 65535]]))
    if hasattr(torch, "uint16"):
        xt, _ = prepare_images(torch.from_numpy(np.full((1, 2, 2), 65535, np.uint16)))
        assert torch.all(xt == 1)


def test_sklearn_style_digits_are_refused_with_the_right_fix():
    """Defect 2: float 0–16 digits said "pass it as uint8 or divide by 255"; following that hint
    (uint8 0–16) was accepted and scaled to [0, 0.063]."""
    digits = np.random.default_rng(0).integers(0, 17, (10, 8, 8)).astype(np.float64)
    digits[0, 0, 0] = 16
    with pytest.raises(InputError, match=r"values in \[0, 16\].*divide by 16 and pass floats in \[0, 1\]") as exc:
        prepare_images(digits)
    assert "pass it as uint8" not in _one_line(exc)
    with pytest.raises(InputError, match=r"uint8 images use only values 0–16 of 0–255.*divide by 16") as exc:
        prepare_images(digits.astype(np.uint8))
    _one_line(exc)
    with pytest.raises(InputError, match=r"int64 images have no fixed range \(values 0–16\).*divide by 16"):
        prepare_images(digits.astype(np.int64))
    x, _ = prepare_images(digits / 16)  # the fix works
    assert float(x.max()) == 1.0


@pytest.mark.parametrize("x,match", [
    (np.full((2, 4, 4), 200, np.uint16), r"uint16 images use only values 200–200 of 0–65535.*uint8"),
    (np.full((2, 4, 4), 4095, np.uint16), r"uint16 .* 4095–4095 .*12-bit.*divide by 4095"),
    (np.full((2, 4, 4), 1, np.uint8), r"uint8 .*1–1 of 0–255.*binary"),
    (np.full((2, 4, 4), 200, np.int64), r"int64 images have no fixed range \(values 200–200\).*x\.astype\(np\.uint8\)"),
    (np.full((2, 4, 4), 40000, np.int32), r"int32 .*uint16"),
    (np.full((2, 4, 4), -3, np.int16), r"int16 .*\(x \+ 1\) / 2"),
    (np.full((2, 4, 4), 200.0), r"\[0, 1\], got values in \[200, 200\].*0–255 levels.*divide by 255"),
    (np.full((2, 4, 4), 3000.0), r"12-bit"),
    (np.full((2, 4, 4), -0.5), r"\(x \+ 1\) / 2"),
    (np.full((2, 4, 4), 1e6, np.uint32), r"uint32 .*0–4294967295"),
])
def test_ambiguous_or_signed_arrays_are_refused_with_the_fix(x, match):
    with pytest.raises(InputError, match=match) as exc:
        prepare_images(x)
    _one_line(exc)


def test_npz_datasets_follow_the_same_dtype_rules(tmp_path):
    np.savez(tmp_path / "deep.npz", x=np.full((10, 1, 4, 4), 32768, np.uint16))
    train = load_dataset(str(tmp_path / "deep.npz"), "train")
    assert train.images.dtype == np.float32 and np.allclose(train.images, 32768 / 65535)
    np.savez(tmp_path / "digits.npz", x=np.random.default_rng(0).integers(0, 17, (10, 8, 8)).astype(np.uint8))
    with pytest.raises(DatasetError, match=r"digits\.npz:x: uint8 images use only values 0–16.*divide by 16"):
        dataset_info(str(tmp_path / "digits.npz"))


def test_the_cli_reads_uint16_input_and_refuses_ambiguous_input_in_one_line(tmp_path, capsys):
    from ldmiss.cli import main
    rng = np.random.default_rng(0)
    np.save(tmp_path / "u16.npy", (rng.uniform(0.2, 1, (8, 1, 8, 8)) * 65535).astype(np.uint16))
    np.save(tmp_path / "digits.npy", rng.integers(0, 17, (8, 8, 8)).astype(np.uint8))
    train = ["train", "--method", "mean", "--quiet", "--device", "cpu"]
    assert main(train + ["--input", str(tmp_path / "u16.npy"), "--out", str(tmp_path / "m1")]) == 0
    capsys.readouterr()
    assert main(train + ["--input", str(tmp_path / "digits.npy"), "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "divide by 16" in err
