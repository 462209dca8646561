"""Figures readable for any image size and channel count, with captions that fit (issue: on a user's
data fig2's samples were a ~30-pixel thumbnail in a 286-pixel image and fig3's caption was cut off
on both sides)."""
import numpy as np
import pytest
from PIL import Image

from ldmiss.experiments.figures import DPI, image_grid, make_figures, show_missing

LONG = ("user folder photos/ (64×64 RGB, 1,234 images), MCAR at the training rate, test images 50% MCAR, "
        "n_eval 200, draws 1, likelihood gaussian; every method at its preset's budget; "
        "FID and IS unavailable without a metric network for this data") * 2


def _rows(methods, rates, with_fid):
    rows = []
    for m in methods:
        for r in rates:
            rows.append({"method": m, "base": m, "group": "", "train_rate": r, "seed": 0, "impute_mse": 0.01 + r,
                         "sample_fid": 10.0 + r if with_fid else None, "sample_is": None, "impute_fid": None,
                         "impute_is": None})
    return rows


def _runs(tmp_path, methods, rates, shape):
    g = np.random.default_rng(0)
    runs = []
    for m in methods:
        for r in rates:
            d = tmp_path / m / f"rate{r:.2f}"
            d.mkdir(parents=True)
            truth = g.uniform(size=(16, *shape)).astype(np.float32)
            mask = (g.uniform(size=truth.shape) > 0.5).astype(np.float32)
            np.savez(d / "examples.npz", samples=truth, test_true=truth, test_mask=mask, impute_guidance=truth)
            runs.append({"method": m, "train_rate": r, "seed": 0, "_dir": str(d)})
    return runs


def _caption_fits(path, fig_px):
    """Every row of the image that holds dark caption ink stays inside the figure: no glyph touches
    the left or right border (a cut caption runs off both)."""
    a = np.asarray(Image.open(path).convert("L"))
    assert a.shape[1] == fig_px
    ink = a[: a.shape[0] // 5] < 128  # the caption sits in the top fifth
    assert ink.any()
    assert not ink[:, :2].any() and not ink[:, -2:].any()


@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 28, 28), (2, 32, 32)])
def test_every_figure_fits_its_caption_and_shows_images_at_full_size(tmp_path, shape):
    methods, rates = ["ldmiss"], [0.0]  # one method, one rate: the narrowest figures
    paths = make_figures(tmp_path / "fig", _runs(tmp_path, methods, rates, shape), _rows(methods, rates, True), LONG,
                         poster=False)
    names = sorted(p.name for p in paths)
    assert names == ["fig1_sample_quality.png", "fig2_samples.png", "fig3_imputation.png",
                     "fig4_imputations_rate0.00.png"]
    for p in paths:
        im = Image.open(p)
        _caption_fits(p, im.size[0])
    # the sample grid (4 wide, channels side by side for 2) needs one screen pixel per image pixel
    grid_w = image_grid(np.zeros((16, *shape)), 4).shape[1]
    fig2 = Image.open(tmp_path / "fig" / "fig2_samples.png")
    assert fig2.size[0] >= grid_w and fig2.size[1] >= grid_w * 0.9
    assert fig2.size[0] >= 6.0 * DPI - 1  # at least 6 inches, so a caption has room


def test_channels_other_than_grey_and_rgb_are_tiled_not_refused():
    x = np.zeros((2, 2, 4, 4), np.float32)
    x[:, 1] = 1.0
    g = image_grid(x, ncol=2)
    assert g.ndim == 2 and g.shape == (4, 2 * 9 + 1)  # each image: 2 tiles of 4 + a gap
    assert (g[:, :4] == 0).all() and (g[:, 5:9] == 1).all()
    m = np.ones_like(x)
    m[:, 1, 0, 0] = 0  # channel 1's first pixel missing: hatched in its tile
    shown = show_missing(x, m)
    assert shown.shape == (2, 3, 4, 9) and shown[0, :, 0, 5].tolist() == [0, 0, 0]  # hatch (black square) on white
    assert shown[0, :, 0, 6].tolist() == [1, 1, 1] and shown[0, :, 0, 0].tolist() == [0, 0, 0]
