"""Image files in, image files out (``ldmiss impute MODEL --input FILES_OR_FOLDERS --out FOLDER``):
the three marks of a missing pixel (alpha 0, a mask image, a colour key), the checks against the
model, and what is written — on files generated here."""
import json

import numpy as np
import pytest
from PIL import Image

from ldmiss.cli import main
from ldmiss.image_files import ImageFileError, read_for_model


def _blobs(n, h, w, channels, seed=0):
    """Smooth random images (sums of a few Gaussian bumps) in [0, 1], N×H×W×C."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, h, w, channels))
    for i in range(n):
        for _ in range(3):
            cy, cx, s = g.uniform(0, h), g.uniform(0, w), g.uniform(2, 5)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))[..., None] * g.uniform(0.3, 1, channels)
    return np.clip(out, 0, 1)


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory):
    """A neighbour-interpolation model for 16×16 RGB (fits at once: the CLI path, not a network, is tested)."""
    root = tmp_path_factory.mktemp("rgb")
    x = _blobs(40, 16, 16, 3).transpose(0, 3, 1, 2).astype(np.float32)
    np.save(root / "train.npy", x)
    assert main(["train", "--method", "neighbours", "--input", str(root / "train.npy"), "--out", str(root / "model"),
                 "--quiet"]) == 0
    return root / "model"


def _save(path, array_hwc, mode=None):
    a = np.rint(np.clip(array_hwc, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a, mode).save(path)


def test_three_marks_of_a_missing_pixel(tmp_path):
    img = _blobs(3, 16, 16, 3, seed=1)
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    # alpha 0 marks the top-left 4×4 of a.png
    rgba = np.concatenate([img[0], np.ones((16, 16, 1))], -1)
    rgba[:4, :4, 3] = 0
    _save(folder / "a.png", rgba)
    # a mask image (black = missing) marks column 5 of sub/b.png
    _save(folder / "sub" / "b.png", img[1])
    masks = tmp_path / "masks"
    (masks / "sub").mkdir(parents=True)
    m = np.ones((16, 16, 1))
    m[:, 5] = 0
    _save(masks / "sub" / "b.mask.png", m)
    for name in ("a.png", "c.jpg"):  # every image needs its mask once --mask is given (white: nothing missing)
        _save(masks / name, np.ones((16, 16, 1)))
    # a magenta key marks two pixels of c.png
    c = img[2].copy()
    c[3, 3] = c[9, 12] = (1, 0, 1)
    _save(folder / "c.png", c)
    x, obs, names, complete = read_for_model([str(folder)], (3, 16, 16), masks=[str(masks)], missing_colour="255,0,255")
    assert [str(n) for n in names] == ["a.png", "c.png", "sub/b.png"] and complete == 0
    missing = 1 - obs[:, 0]
    assert missing[0].sum() == 16 and missing[0, :4, :4].all()
    assert missing[1].sum() == 2 and missing[1, 3, 3] and missing[1, 9, 12]
    assert missing[2].sum() == 16 and missing[2][:, 5].all()
    assert (x[obs == 0] == 0).all()  # missing pixels carry no stale values
    np.testing.assert_allclose(x[2][:, obs[2, 0] > 0].T, img[1][obs[2, 0] > 0], atol=0.5 / 255 + 1e-6)


def test_checks_against_the_model(tmp_path):
    _save(tmp_path / "big.png", _blobs(1, 20, 16, 3)[0])
    with pytest.raises(ImageFileError, match="20×16 pixels, but the model takes 16×16"):
        read_for_model([str(tmp_path / "big.png")], (3, 16, 16))
    _save(tmp_path / "colour.png", _blobs(1, 16, 16, 3)[0])
    with pytest.raises(ImageFileError, match="colour image, but the model is grayscale"):
        read_for_model([str(tmp_path / "colour.png")], (1, 16, 16))
    grey = _blobs(1, 16, 16, 1)[0]
    _save(tmp_path / "grey_as_rgb.png", np.repeat(grey, 3, -1))
    _save(tmp_path / "grey.png", grey)
    x, _, _, complete = read_for_model([str(tmp_path / "grey_as_rgb.png")], (1, 16, 16))
    assert x.shape == (1, 1, 16, 16) and complete == 1  # equal channels: a grey image saved as RGB
    x, _, _, _ = read_for_model([str(tmp_path / "grey.png")], (3, 16, 16))
    assert x.shape == (1, 3, 16, 16) and (x[0, 0] == x[0, 2]).all()  # grey to a colour model: R = G = B
    (tmp_path / "masks").mkdir()
    with pytest.raises(ImageFileError, match="no mask for it"):
        read_for_model([str(tmp_path / "grey.png")], (1, 16, 16), masks=[str(tmp_path / "masks")])
    with pytest.raises(ImageFileError, match="does not exist"):
        read_for_model([str(tmp_path / "grey.png")], (1, 16, 16), masks=[str(tmp_path / "nomask.png")])
    with pytest.raises(ImageFileError, match="grey level"):
        read_for_model([str(tmp_path / "grey.png")], (1, 16, 16), missing_colour="255,0,255")
    with pytest.raises(ImageFileError, match="does not exist"):
        read_for_model([str(tmp_path / "none")], (1, 16, 16))


def test_impute_folder_to_folder_end_to_end(rgb_model, tmp_path, capsys):
    img = _blobs(2, 16, 16, 3, seed=3)
    (tmp_path / "in").mkdir()
    for i, a in enumerate(img):
        rgba = np.concatenate([a, np.ones((16, 16, 1))], -1)
        rgba[4:8, 4:12, 3] = 0 if i == 0 else 1  # the second file has no missing pixel
        _save(tmp_path / "in" / f"img{i}.png", rgba)
    out = tmp_path / "filled"
    assert main(["impute", str(rgb_model), "--input", str(tmp_path / "in"), "--out", str(out), "--draws", "2",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 of 2 image(s) had no missing pixel" in err
    written = sorted(p.name for p in out.iterdir())
    assert written == ["img0.png", "img0.std.png", "img1.png", "img1.std.png", "imputed.npz"]
    arrays = np.load(out / "imputed.npz")
    assert list(arrays["names"]) == ["img0.png", "img1.png"] and arrays["std"].shape == (2, 3, 16, 16)
    back = np.asarray(Image.open(out / "img0.png"), np.float32) / 255
    observed = arrays["obs_mask"][0, 0] > 0
    source = np.rint(img[0] * 255) / 255
    np.testing.assert_allclose(back[observed], source[observed], atol=0.5 / 255 + 1e-6)  # observed kept
    hole = back[4:8, 4:12]
    assert np.abs(hole - source[4:8, 4:12]).mean() < 0.25 and hole.std() > 0  # filled from the neighbours
    np.testing.assert_allclose(np.asarray(Image.open(out / "img1.png"), np.float32) / 255, np.rint(img[1] * 255) / 255,
                               atol=0.5 / 255 + 1e-6)  # nothing missing: returned as it was


def test_impute_refuses_before_loading_the_model(rgb_model, tmp_path, capsys):
    _save(tmp_path / "small.png", _blobs(1, 8, 8, 3)[0])
    assert main(["impute", str(rgb_model), "--input", str(tmp_path / "small.png"), "--out", str(tmp_path / "o")]) == 2
    assert "the model takes 16×16" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    assert main(["impute", str(rgb_model), "--input", str(tmp_path / "x.npy"), str(tmp_path / "small.png"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "not both" in capsys.readouterr().err
    assert json.loads((rgb_model / "config.json").read_text())["image_shape"] == [3, 16, 16]
