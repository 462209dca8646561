"""Every image file a user brings is read into [0, 1] by the range its format defines, or refused
with one line naming the file and its mode and saying how to fix it (the arrays' dtype rules are
tested in test_missing_inputs.py).

Image files are written here with Pillow in each mode it can save; modes no format saves (YCbCr,
HSV, premultiplied La/RGBa, the other 16-bit byte orders) are decoded from images made in memory.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ldmiss.data import DatasetError, dataset_info, load_dataset
from ldmiss.data.user import decode_image, read_folder


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    return msg


def _folder(tmp_path: Path, *images: tuple[str, "Image.Image"]) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, im in images:
        im.save(folder / name)
    return folder


def _read_one(tmp_path: Path, name: str, im, **kw):
    """(C×H×W float in [0, 1], observed C×H×W or None) of a folder holding the one file."""
    images, _, natural = read_folder(_folder(tmp_path, (name, im)), **kw)
    x = images[0].astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    return x, (None if natural is None else natural[0])


def _palette(colours: list[tuple[int, int, int]], index: np.ndarray, **info):
    im = Image.new("P", index.shape[::-1])
    im.putpalette([c for rgb in colours for c in rgb])
    im.putdata(index.reshape(-1).tolist())
    im.info.update(info)
    return im


# ---------------------------------------------------------------- every mode Pillow saves, as a file

def _gradient16() -> np.ndarray:
    return np.array([[0, 16384], [32768, 65535]], np.uint16)


FILE_MODES = {
    # name: (file name, image, expected C×H×W values in [0, 1])
    "1": ("bilevel.png", lambda: Image.fromarray(np.array([[0, 1], [1, 0]], bool)),
          np.array([[[0, 1], [1, 0]]], np.float32)),
    "L": ("grey.png", lambda: Image.fromarray(np.array([[0, 64], [128, 255]], np.uint8)),
          np.array([[[0, 64], [128, 255]]], np.float32) / 255),
    "P": ("palette.png", lambda: _palette([(255, 0, 0), (0, 128, 255)], np.array([[0, 1], [1, 0]])),
          np.moveaxis(np.array([[[255, 0, 0], [0, 128, 255]], [[0, 128, 255], [255, 0, 0]]], np.float32), -1, 0) / 255),
    "P (grey palette)": ("greypal.png", lambda: _palette([(10, 10, 10), (200, 200, 200)], np.array([[0, 1], [1, 1]])),
                         np.array([[[10, 200], [200, 200]]], np.float32) / 255),
    "RGB": ("rgb.png", lambda: Image.fromarray(np.array([[[10, 20, 30]] * 2] * 2, np.uint8)),
            np.array([10, 20, 30], np.float32)[:, None, None].repeat(2, 1).repeat(2, 2) / 255),
    "CMYK": ("cmyk.tif", lambda: Image.new("CMYK", (2, 2), (0, 255, 255, 0)),  # magenta + yellow = red
             np.array([1, 0, 0], np.float32)[:, None, None].repeat(2, 1).repeat(2, 2)),
    "I;16 (PNG)": ("deep.png", lambda: Image.fromarray(_gradient16()), _gradient16()[None] / 65535),
    "I;16 (TIFF)": ("deep.tif", lambda: Image.fromarray(_gradient16()), _gradient16()[None] / 65535),
    "I;16B (TIFF)": ("deepb.tif", lambda: Image.frombytes("I;16B", (2, 2), _gradient16().astype(">u2").tobytes()),
                     _gradient16()[None] / 65535),
    "F": ("float.tif", lambda: Image.fromarray(np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)),
          np.array([[[0.0, 0.25], [0.5, 1.0]]], np.float32)),
    "LA (opaque)": ("la.png", lambda: Image.merge("LA", [Image.fromarray(np.array([[40, 80], [40, 80]], np.uint8)),
                                                         Image.new("L", (2, 2), 255)]),
                    np.array([[[40, 80], [40, 80]]], np.float32) / 255),
    "RGBA (opaque)": ("rgba.png", lambda: Image.new("RGBA", (2, 2), (255, 128, 0, 255)),
                      np.array([255, 128, 0], np.float32)[:, None, None].repeat(2, 1).repeat(2, 2) / 255),
}


@pytest.mark.parametrize("mode", list(FILE_MODES))
def test_each_mode_pillow_saves_reads_into_the_unit_range_by_its_real_range(tmp_path, mode):
    name, make, expected = FILE_MODES[mode]
    x, observed = _read_one(tmp_path, name, make())
    assert observed is None
    assert x.shape == expected.shape and x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x, expected, atol=1e-6)


def test_i16_half_scale_reads_a_half_and_a_float_quarter_reads_a_quarter(tmp_path):
    """Defect 1: a 16-bit PNG read as all 255 (Pillow's convert('L') clips) and a float TIFF in
    [0, 1] as all 0 (it truncates); training went on silently on both."""
    half = _folder(tmp_path / "a", *((f"{i}.png", Image.fromarray(np.full((4, 4), 32768, np.uint16))) for i in range(5)))
    x16 = load_dataset(str(half), "train").float_images()
    assert np.allclose(x16, 32768 / 65535) and abs(float(x16.mean()) - 0.5) < 1e-4
    quarter = _folder(tmp_path / "b", *((f"{i}.tif", Image.fromarray(np.full((4, 4), 0.25, np.float32))) for i in range(5)))
    assert np.all(load_dataset(str(quarter), "train").float_images() == 0.25)
    mixed = _folder(tmp_path / "c", ("a.png", Image.fromarray(np.full((4, 4), 32768, np.uint16))),
                    ("b.png", Image.fromarray(np.full((4, 4), 64, np.uint8))))
    images = load_dataset(str(mixed), "train", options={"test_fraction": 0.5}).images
    images = np.concatenate([images, load_dataset(str(mixed), "test", options={"test_fraction": 0.5}).images])
    assert images.dtype == np.float32 and np.allclose(sorted(images.reshape(2, -1)[:, 0]), [64 / 255, 32768 / 65535])


# ------------------------------------------------ modes no file format round-trips: decoded in memory

MEMORY_MODES = {
    "YCbCr": (lambda: Image.new("YCbCr", (2, 2), (128, 128, 128)), np.full((2, 2, 3), 128 / 255)),
    "HSV": (lambda: Image.new("HSV", (2, 2), (0, 255, 255)), np.array([1.0, 0, 0])[None, None].repeat(2, 0).repeat(2, 1)),
    "RGBX": (lambda: Image.new("RGBX", (2, 2), (1, 2, 3, 0)), np.array([1, 2, 3])[None, None].repeat(2, 0).repeat(2, 1) / 255),
    "I;16L": (lambda: Image.frombytes("I;16L", (2, 2), _gradient16().astype("<u2").tobytes()), _gradient16()[..., None] / 65535),
    "I;16N": (lambda: Image.frombytes("I;16N", (2, 2), _gradient16().tobytes()), _gradient16()[..., None] / 65535),
    "I from a PNG (Pillow < 10's 16-bit)": (lambda: Image.fromarray(_gradient16().astype(np.int32)),
                                             _gradient16()[..., None] / 65535),
    "La": (lambda: Image.new("La", (2, 2), (50, 255)), np.full((2, 2, 1), 50 / 255)),
    "RGBa": (lambda: Image.new("RGBa", (2, 2), (10, 20, 30, 255)),
             np.array([10, 20, 30])[None, None].repeat(2, 0).repeat(2, 1) / 255),
}


@pytest.mark.parametrize("mode", list(MEMORY_MODES))
def test_modes_made_in_memory_decode_by_their_real_range(mode):
    make, expected = MEMORY_MODES[mode]
    values, observed = decode_image("mem", make(), "PNG")
    x = values.astype(np.float32) / (255.0 if values.dtype == np.uint8 else 1.0)
    assert observed is None and x.shape == expected.shape
    np.testing.assert_allclose(x, expected, atol=1e-6)


# ----------------------------------------------------------------------- refused, with one line each

@pytest.mark.parametrize("name,make,match", [
    ("big.tif", lambda: Image.fromarray(np.array([[0, 16], [3, 12]], np.float32)), r"big\.tif: mode F .*0 to 16.*rescaled"),
    ("neg.tif", lambda: Image.fromarray(np.array([[-1, 0], [0.5, 1]], np.float32)), r"neg\.tif: mode F .*-1 to 1"),
    ("int32.tif", lambda: Image.fromarray(np.array([[0, 70000], [5, 9]], np.int32)), r"int32\.tif: mode I .*0–70000.*16-bit"),
    ("lab.tif", lambda: Image.new("LAB", (2, 2), (50, 128, 128)), r"lab\.tif: Pillow mode 'LAB'.*Lab colour"),
])
def test_unreadable_modes_are_refused_naming_the_file_and_mode(tmp_path, name, make, match):
    with pytest.raises(DatasetError, match=match) as exc:
        read_folder(_folder(tmp_path, (name, make())))
    _one_line(exc)
    with pytest.raises(DatasetError, match=name.replace(".", r"\.")):
        dataset_info(str(tmp_path / "imgs"))  # the same error through the dataset layer


class _OddImage:
    """Stands for an image in a mode no reader here knows (only its mode is looked at)."""
    mode, info = "BGR;16", {}


def test_a_mode_nothing_reads_is_refused_naming_it():
    with pytest.raises(DatasetError, match=r"x\.png: Pillow mode 'BGR;16' cannot be read") as exc:
        decode_image("x.png", _OddImage(), "PNG")
    _one_line(exc)


# --------------------------------------------------------------------- transparency is missingness

def _sprite() -> "Image.Image":
    """4×4 red square whose top-left 2×2 corner is fully transparent and one pixel half transparent."""
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0], a[..., 3] = 200, 255
    a[:2, :2, 3] = 0
    a[3, 3, 3] = 128
    return Image.fromarray(a)


def test_alpha_zero_is_a_missing_pixel_by_default_and_flows_into_the_training_mask(tmp_path):
    from ldmiss.experiments.config import ExperimentConfig
    from ldmiss.experiments.protocol import training_data
    x, observed = _read_one(tmp_path / "one", "s.png", _sprite())
    assert observed.shape == (3, 4, 4) and observed[:, :2, :2].sum() == 0 and observed.sum() == 3 * 12
    assert np.all(x[:, :2, :2] == 0)  # a missing pixel holds 0
    assert np.allclose(x[:, 3, 3], [200 / 255, 0, 0])  # alpha > 0: observed, with its stored colour
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(10):
        (_sprite() if i < 5 else Image.new("RGBA", (4, 4), (0, 90, 0, 255))).save(folder / f"{i}.png")
    train = load_dataset(str(folder), "train")
    assert train.obs_mask is not None and train.obs_mask.shape == train.images.shape
    cfg = ExperimentConfig(name="t", dataset=str(folder), train_size=100, n_eval=2)
    _, m = training_data(cfg, 0.0, 0)  # rate 0: the training mask is the data's own (in a seeded order)
    natural = torch.from_numpy(train.obs_mask).float()
    assert (natural == 0).any() and (m == 0).sum() == (natural == 0).sum()
    assert sorted(map(bytes, m.bool().numpy())) == sorted(map(bytes, natural.bool().numpy()))


@pytest.mark.parametrize("alpha,fill", [("black", 0.0), ("white", 1.0)])
def test_alpha_can_be_composited_instead(tmp_path, alpha, fill):
    x, observed = _read_one(tmp_path, "s.png", _sprite(), alpha=alpha)
    assert observed is None
    assert np.allclose(x[:, :2, :2], fill)
    w = 128 / 255  # the half-transparent pixel: its colour over the background
    assert np.allclose(x[:, 3, 3], [200 / 255 * w + fill * (1 - w), fill * (1 - w), fill * (1 - w)], atol=0.5 / 255)
    with pytest.raises(DatasetError, match="alpha must be one of"):
        dataset_info(str(tmp_path / "imgs"), {"alpha": "grey"})
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 4, 4), np.float32))
    with pytest.raises(DatasetError, match="not to .npz"):
        dataset_info(str(tmp_path / "d.npz"), {"alpha": alpha})


def test_transparency_of_palette_and_grey_images_is_missingness_too(tmp_path):
    pal = _palette([(255, 0, 0), (0, 0, 255)], np.array([[0, 1], [1, 1]]), transparency=0)
    x, observed = _read_one(tmp_path / "p", "p.png", pal)
    assert x.shape == (3, 2, 2) and observed[:, 0, 0].sum() == 0 and observed.sum() == 9
    assert np.allclose(x[:, 1, 1], [0, 0, 1])
    grey = Image.fromarray(np.array([[0, 10], [20, 30]], np.uint8))
    grey.info["transparency"] = 10  # PNG tRNS: one grey level means transparent
    x, observed = _read_one(tmp_path / "g", "g.png", grey)
    assert x.shape == (1, 2, 2) and observed.tolist() == [[[1, 0], [1, 1]]]
    nan = np.array([[0.5, np.nan], [0.25, 1.0]], np.float32)  # a float image's NaN is missing, like an .npz's
    x, observed = _read_one(tmp_path / "f", "f.tif", Image.fromarray(nan))
    assert observed.tolist() == [[[1, 0], [1, 1]]] and x[0, 0, 1] == 0 and x[0, 1, 0] == 0.25


def test_resizing_with_missing_pixels_does_not_bleed_their_placeholder(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[..., 1], a[..., 3] = 255, 255
    a[:, :4, 3] = 0  # left half transparent (its colour, black, must not darken the right half)
    x, observed = _read_one(tmp_path, "half.png", Image.fromarray(a), size=(4, 4))
    assert observed[0].tolist() == [[0, 0, 1, 1]] * 4
    assert np.allclose(x[1][observed[1] > 0], 1.0, atol=1e-5)


# ----------------------------------------------------------- --image-size and the aspect ratio (defect 4)

def test_image_size_warns_when_it_stretches_and_can_centre_crop_instead(tmp_path):
    """Defect 4: --image-size changed the aspect ratio without saying so."""
    a = np.zeros((8, 16), np.uint8)
    a[:, 4:12] = 255  # a centred 8×8 white square on a 8×16 black strip
    folder = _folder(tmp_path, *((f"{i}.png", Image.fromarray(a)) for i in range(5)))
    with pytest.warns(UserWarning, match=r"stretches 5 of 5 image\(s\).*0\.png, 8×16.*aspect = 'crop'"):
        stretched = read_folder(folder, (8, 8))[0]
    assert stretched.shape == (5, 1, 8, 8) and 0 < stretched.mean() < 255  # black margins squeezed in
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cropped = read_folder(folder, (8, 8), aspect="crop")[0]
        assert np.all(cropped == 255)  # the centred square, aspect kept
        read_folder(folder, (4, 8))  # same aspect: no warning
    assert dataset_info(str(folder), {"size": [8, 8], "aspect": "crop"}).shape == (1, 8, 8)
    with pytest.raises(DatasetError, match="applies when resizing"):
        dataset_info(str(folder), {"aspect": "crop"})


def test_the_cli_says_image_size_stretches_and_passes_the_aspect_choice(tmp_path):
    from ldmiss.cli import _dataset_changes, build_parser
    parser = build_parser()
    for cmd in ("train", "sweep"):
        sub = parser._subparsers._group_actions[0].choices[cmd]
        assert "stretches" in sub.format_help() and "--image-aspect" in sub.format_help()
    args = parser.parse_args(["sweep", "--dataset", str(tmp_path), "--image-size", "8", "8", "--image-aspect", "crop"])
    assert _dataset_changes("quick", args)["dataset_options"] == {"size": [8, 8], "aspect": "crop"}


def test_a_folder_of_dark_16_bit_images_warns_it_may_be_12_bit(tmp_path):
    folder = _folder(tmp_path, ("a.png", Image.fromarray(np.full((4, 4), 4000, np.uint16))))
    with pytest.warns(UserWarning, match="never exceed 4000 of 65535.*12-bit"):
        read_folder(folder)
