"""The dataset layer (the user's folders and .npz files, the registry), decoder likelihoods, pixel
metrics, colour grids, conditions as a sweep axis, and the Fashion-MNIST metric network."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ldmiss.data import DatasetError, dataset_info, load_dataset, suggest_likelihood

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _rgb_folder(root: Path, n: int = 24, h: int = 12, w: int = 16) -> Path:
    """Two classes of smooth colour gradients, h×w (non-square, divisible by 4), as PNG files."""
    from PIL import Image
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    for cls in ("left", "down"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n // 2):
            ramp = xx / (w - 1) if cls == "left" else yy / (h - 1)
            img = np.stack([np.clip(c * ramp + rng.normal(0, 0.03, (h, w)), 0, 1) for c in rng.uniform(0.3, 1, 3)], -1)
            Image.fromarray((img * 255).astype(np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_folder_of_rgb_images_is_a_dataset_with_labels_and_a_seeded_disjoint_split(tmp_path):
    folder = _rgb_folder(tmp_path / "imgs")
    info = dataset_info(str(folder))
    assert info.shape == (3, 12, 16) and info.metric_network is None and info.likelihood == "gaussian"
    train, test = load_dataset(str(folder), "train"), load_dataset(str(folder), "test")
    assert len(train) + len(test) == 24 and len(test) == round(0.2 * 24)
    assert train.images.dtype == np.uint8 and set(np.unique(train.labels)) == {0, 1}
    flat = lambda d: {a.tobytes() for a in d.images}  # noqa: E731
    assert not flat(train) & flat(test)  # disjoint
    again = load_dataset(str(folder), "test")
    assert np.array_equal(again.images, test.images)  # the split is a property of the data, not of a run
    other = load_dataset(str(folder), "test", options={"split_seed": 1})
    assert not np.array_equal(other.images, test.images)
    resized = dataset_info(str(folder), {"size": [8, 8]})
    assert resized.shape == (3, 8, 8)


def test_a_broken_or_mismatched_image_file_is_named(tmp_path):
    folder = _rgb_folder(tmp_path / "imgs", n=4)
    (folder / "left" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="broken.png"):
        dataset_info(str(folder))
    (folder / "left" / "broken.png").unlink()
    from PIL import Image
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "down" / "big.png")
    with pytest.raises(DatasetError, match="big.png.*differs"):
        dataset_info(str(folder))
    assert dataset_info(str(folder), {"size": [12, 16]}).shape == (3, 12, 16)  # resizing makes them one size
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no image files"):
        dataset_info(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="unknown dataset option"):
        dataset_info(str(folder), {"sizes": [8, 8]})
    with pytest.raises(DatasetError, match="takes no options"):
        dataset_info("mnist", {"size": [8, 8]})


def test_npz_dataset_keeps_its_own_missing_pixels_and_is_scored_where_it_has_a_truth(tmp_path):
    from ldmiss.experiments.config import ExperimentConfig
    from ldmiss.experiments.protocol import scored_test_data, training_data
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (50, 1, 8, 8)).astype(np.float32)
    x[:20, :, :2, :2] = np.nan  # 20 images lack a corner
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50) % 3)
    info = dataset_info(str(tmp_path / "d.npz"))
    assert info.shape == (1, 8, 8)
    train = load_dataset(str(tmp_path / "d.npz"), "train")
    assert train.obs_mask is not None and train.images.dtype == np.float32
    assert np.all(train.images[train.obs_mask == 0] == 0)  # a missing pixel holds 0, never NaN
    cfg = ExperimentConfig(name="t", dataset=str(tmp_path / "d.npz"), train_size=100, n_eval=5)
    xt, m = training_data(cfg, 0.3, 0)
    lacks = xt == 0  # where the data has no value (uniform draws are never exactly 0)
    assert lacks.sum() == 4 * (train.obs_mask.reshape(len(train), -1).min(1) == 0).sum()
    assert torch.all(m[lacks] == 0)  # the data's own holes stay missing under the mechanism's mask
    assert 0.25 < 1 - m[~lacks].mean().item() < 0.35
    cfg.n_eval = 50
    x_test, given, unscored = scored_test_data(cfg, 0)
    assert not torch.isnan(x_test).any()
    own = (x_test != 0).float()  # the data's own pixels (its holes hold 0)
    assert (own < 1).any()  # incomplete test images are used too (a folder may have no complete one)
    assert torch.all(given <= own)  # the imputer never sees a pixel the data lacks
    scored = unscored == 0
    assert torch.all(own[scored] == 1) and torch.all(given[scored] == 0)  # scored: the data has it, the mask hid it
    assert torch.equal(scored, (own == 1) & (given == 0))
    x[:, :, :2, :2] = np.nan  # now no image is complete: still scored, on the hidden pixels it has
    np.savez(tmp_path / "all.npz", x=x)
    cfg.dataset = str(tmp_path / "all.npz")
    _, _, unscored = scored_test_data(cfg, 0)
    assert (unscored == 0).sum() > 0 and torch.all(unscored[..., :2, :2] == 1)
    np.savez(tmp_path / "bad.npz", images_wrong=x)
    with pytest.raises(DatasetError, match="found: images_wrong"):
        dataset_info(str(tmp_path / "bad.npz"))


def test_suggested_likelihood_follows_the_data():
    rng = np.random.default_rng(0)
    assert suggest_likelihood((rng.uniform(size=(10, 1, 8, 8)) > 0.5).astype(np.uint8) * 255) == "bernoulli"
    assert suggest_likelihood(rng.uniform(size=(10, 3, 8, 8)).astype(np.float32)) == "gaussian"
    assert dataset_info("mnist").likelihood == "bernoulli"


@pytest.mark.parametrize("lam", [0.02, 0.3, 0.4995, 0.5, 0.5004, 0.8, 0.97])
def test_continuous_bernoulli_is_a_density_on_the_unit_interval_with_the_stated_mean(lam):
    from ldmiss.nets.likelihoods import Likelihood
    lik = Likelihood("cbernoulli")
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)
    out = torch.full_like(grid, math.log(lam / (1 - lam)))
    dens = torch.exp(lik.log_prob(out, grid))
    total = torch.trapezoid(dens, grid).item()
    mean = torch.trapezoid(grid * dens, grid).item()
    assert total == pytest.approx(1.0, abs=1e-4)
    assert lik.mean(out[:1]).item() == pytest.approx(mean, abs=1e-4)


def test_gaussian_and_bernoulli_likelihoods_match_their_closed_forms():
    from ldmiss.nets.likelihoods import Likelihood
    out, x = torch.tensor([[-1.0, 0.0, 2.0]]), torch.tensor([[0.2, 0.5, 1.0]])
    g = Likelihood("gaussian", channels=1)
    mu, s = torch.sigmoid(out), torch.exp(g.log_scale).view(-1)
    expected = -0.5 * ((x - mu) / s) ** 2 - torch.log(s) - 0.5 * math.log(2 * math.pi)
    assert torch.allclose(g.log_prob(out.view(1, 1, 1, 3), x.view(1, 1, 1, 3)).view(1, 3), expected, atol=1e-6)
    b = Likelihood("bernoulli")
    p = torch.sigmoid(out)
    assert torch.allclose(b.log_prob(out, x), x * torch.log(p) + (1 - x) * torch.log(1 - p), atol=1e-6)
    with pytest.raises(ValueError, match="unknown decoder likelihood"):
        Likelihood("poisson")


@pytest.mark.parametrize("likelihood", ["cbernoulli", "gaussian"])
def test_vae_trains_with_each_likelihood_and_learns_the_gaussian_scale(likelihood):
    from ldmiss.methods import VAEImputer
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 3, 8, 12)).astype(np.float32)  # noise: a residual spread of ≈ 0.29 per pixel
    m = VAEImputer(vae={"width": 8, "likelihood": likelihood, "train": {"steps": 60, "batch_size": 32}})
    m.fit(x, seed=0)
    out = m.impute(x[:4], (rng.uniform(size=(4, 3, 8, 12)) > 0.5).astype(np.float32), seed=0)
    assert out.mean.shape == (4, 3, 8, 12) and np.isfinite(out.mean).all()
    if likelihood == "gaussian":  # the scale is learned: it grows from its initial 0.1 towards the residual spread
        scale = m.vae.likelihood.log_scale.exp().view(-1)
        assert scale.shape == (3,) and torch.all(scale > 0.103)


def test_psnr_and_ssim_on_missing_pixels_on_known_cases():
    from ldmiss.metrics import missing_mse, missing_psnr, missing_ssim
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=(4, 1, 16, 16)).astype(np.float32)
    mask = (rng.uniform(size=truth.shape) > 0.5).astype(np.float32)
    assert missing_ssim(truth, truth, mask) == pytest.approx(1.0, abs=1e-6)
    off = np.clip(truth + 0.1 * np.where(mask == 0, 1, 0) * np.sign(0.5 - truth), 0, 1)
    assert missing_mse(off, truth, mask) == pytest.approx(0.01, rel=1e-4)
    assert missing_psnr(off, truth, mask) == pytest.approx(20.0, abs=1e-3)  # 10·log10(1/0.01)
    assert missing_ssim(rng.uniform(size=truth.shape), truth, mask) < 0.2


def test_image_grid_shows_colour_as_colour_and_grey_as_grey(tmp_path):
    from PIL import Image

    from ldmiss.experiments.figures import image_grid, save_grid
    rgb = np.zeros((2, 3, 4, 4), np.float32)
    rgb[:, 0] = 1.0  # pure red
    g = image_grid(rgb, ncol=2)
    assert g.shape == (4, 9, 3) and np.allclose(g[0, 0], [1, 0, 0])
    assert image_grid(rgb[:, :1], ncol=2).ndim == 2
    im = np.asarray(Image.open(save_grid(rgb, tmp_path / "g.png", ncol=2)).convert("RGB"))
    assert im[0, 0].tolist() == [255, 0, 0]


def test_condition_tags_keep_the_poster_protocol_where_it_was():
    from ldmiss.experiments.store import condition_tag
    assert condition_tag({"dataset": "mnist", "mechanism": "mcar"}) == ""
    assert condition_tag({"dataset": "mnist", "mechanism": "mcar", "test_mechanism": "mcar"}) == ""
    assert condition_tag({"dataset": "fashion-mnist", "mechanism": "mcar"}) == "fashion-mnist"
    assert condition_tag({"mechanism": "block", "mechanism_params": {"size": 14}}) == "block-size14"
    assert condition_tag({"mechanism": "mcar", "test_mechanism": "half", "test_mechanism_params": {"side": "top"}}) \
        == "train-mcar_test-half-sidetop"


def test_a_sweep_over_conditions_stores_each_under_its_folder_and_reports_each(tmp_path, mnist_test):
    from ldmiss.config import ConfigError
    from ldmiss.experiments import build_report, run_sweep
    from ldmiss.experiments.config import experiment_from_dict
    base = {"name": "cond", "methods": ["mean"], "train_rates": [0.5], "seeds": [0], "train_size": 256,
            "n_eval": 32, "n_ref": 200, "grid": 4}
    cfg = experiment_from_dict({**base, "conditions": [{}, {"test_mechanism": "block", "test_mechanism_params": {"size": 7}},
                                                       {"mechanism": "half", "mechanism_params": {"side": "bottom"}}]})
    out = run_sweep(cfg, tmp_path, progress=False)
    assert out["ran"] == 3 and out["failed"] == 0
    assert (tmp_path / "mean" / "rate0.50_seed0" / "metrics.json").is_file()
    assert (tmp_path / "train-mcar_test-block-size7" / "mean" / "rate0.50_seed0" / "metrics.json").is_file()
    assert (tmp_path / "half-sidebottom" / "mean" / "rate0.50_seed0" / "metrics.json").is_file()
    assert run_sweep(cfg, tmp_path, progress=False)["skipped"] == 3  # resumes per condition
    rep = build_report(tmp_path, figures=False)
    assert rep["tables"].count("## MNIST") == 3 and "test masks block (size=7)" in rep["tables"]
    import csv
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert {r["group"] for r in rows} == {"", "train-mcar_test-block-size7", "half-sidebottom"}
    assert {r["test_mechanism"] for r in rows} == {"MCAR", "block (size=7)", "half (side=bottom)"}
    with pytest.raises(ConfigError, match="the same"):
        experiment_from_dict({**base, "conditions": [{}, {"mechanism": "mcar"}]})
    with pytest.raises(ConfigError, match="the same"):
        experiment_from_dict({**base, "conditions": [{}, {"test_rate": 0.5}]})
    with pytest.raises(ConfigError, match=r"conditions\[0\].*cannot vary"):
        experiment_from_dict({**base, "conditions": [{"n_eval": 3}]})
    with pytest.raises(ConfigError, match=r"conditions\[1\]: mechanism"):
        experiment_from_dict({**base, "conditions": [{}, {"mechanism": "nope"}]})


def test_conditions_that_share_training_fit_once_and_score_exactly_as_a_fresh_fit(tmp_path, mnist_test):
    from ldmiss.experiments import run_sweep
    from ldmiss.experiments.config import experiment_from_dict
    from ldmiss.experiments.store import read_run
    from tests.conftest import TINY
    base = {"name": "reuse", "methods": ["vae"], "train_rates": [0.5], "seeds": [0], "train_size": 128,
            "n_eval": 16, "n_ref": 100, "grid": 2, "overrides": {"vae": TINY["vae"]}}
    block = {"test_mechanism": "block", "test_mechanism_params": {"size": 7}, "test_rate": 0.25}
    run_sweep(experiment_from_dict({**base, "conditions": [{}, block]}), tmp_path / "both", progress=False)
    run_sweep(experiment_from_dict({**base, "conditions": [block]}), tmp_path / "alone", progress=False)
    tag = "train-mcar_test-block-size7_testrate0.25"
    reused = read_run(tmp_path / "both" / tag / "vae" / "rate0.50_seed0")
    fresh = read_run(tmp_path / "alone" / tag / "vae" / "rate0.50_seed0")
    assert reused["timings"].get("fit_reused") and not fresh["timings"].get("fit_reused")
    for mode in ("encoder", "map"):
        assert reused["metrics"]["impute"][mode]["mse"] == fresh["metrics"]["impute"][mode]["mse"]
    assert reused["metrics"]["decoder_floor"] == fresh["metrics"]["decoder_floor"]


def test_a_dataset_without_metric_network_is_scored_on_pixels_end_to_end(tmp_path):
    """A folder of RGB PNGs of a non-square size trains and imputes end to end (CLI), and a sweep on it
    reports MSE/PSNR/SSIM and says FID/IS are unavailable."""
    from ldmiss.cli import main
    from ldmiss.experiments import build_report, run_sweep
    from ldmiss.experiments.config import load_preset
    folder = _rgb_folder(tmp_path / "imgs", n=40)
    model = tmp_path / "model"
    tiny = ["--set", "vae.width=8", "--set", "vae.train.steps=10", "--set", "prior.net.width=32",
            "--set", "prior.train.steps=10", "--set", "prior.sampler.steps=3"]
    assert main(["train", "--preset", "smoke", "--dataset", str(folder), "--rate", "0.5", "--out", str(model),
                 "--quiet", *tiny]) == 0
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["config"]["vae"]["likelihood"] == "gaussian"  # the likelihood that suits colour gradients
    x = load_dataset(str(folder), "test").images[:3].astype(np.float32) / 255
    x[:, :, :6] = np.nan
    np.save(tmp_path / "x.npy", x)
    assert main(["impute", str(model), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npz"),
                 "--png", str(tmp_path / "o.png"), "--quiet"]) == 0
    imputed = np.load(tmp_path / "o.npz")["imputed"]
    assert imputed.shape == (3, 3, 12, 16) and np.isfinite(imputed).all()
    cfg = load_preset("smoke")
    cfg.dataset, cfg.methods, cfg.train_size, cfg.n_eval, cfg.grid = str(folder), ["ldmiss", "mean"], 32, 8, 4
    assert run_sweep(cfg, tmp_path / "runs", progress=False)["failed"] == 0
    rep = build_report(tmp_path / "runs")
    assert "FID and IS are unavailable" in rep["tables"] and "PSNR" in rep["tables"] and "SSIM" in rep["tables"]
    assert "FID ↓" not in rep["tables"]
    assert any(p.name == "fig4_imputations_rate0.50.png" for p in rep["figures"])


def test_a_large_latent_gets_a_convolutional_prior():
    from ldmiss.methods.latent_prior import LatentPrior, LatentPriorConfig
    from ldmiss.nets import ResMLP, UNet
    cfg = LatentPriorConfig()
    assert isinstance(LatentPrior(cfg, (2, 7, 7)).net, ResMLP)  # MNIST's 98 values: the MLP
    big = LatentPrior(cfg, (2, 16, 16))  # 64×64 images: 512 values — still the MLP at the limit
    assert isinstance(big.net, ResMLP)
    huge = LatentPrior(cfg, (4, 16, 16))
    assert isinstance(huge.net, UNet)
    u = torch.randn(3, 4, 16, 16)
    assert huge.net(u, torch.rand(3)).shape == u.shape


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed "
                    "(apt-get install dataset-fashion-mnist) and the tests do not download")
def test_fashion_mnist_metric_network_is_shipped_verified_and_accurate():
    from ldmiss.metrics import METRIC_NETWORKS, inception_score, load_classifier
    test = load_dataset("fashion-mnist", "test", data_dir=str(DEBIAN_FASHION))
    x = torch.from_numpy(test.float_images())
    net = load_classifier("fashion-mnist")
    acc = (net(x).argmax(1).numpy() == test.labels).mean()
    assert acc >= 0.90 and acc == pytest.approx(METRIC_NETWORKS["fashion-mnist"].test_accuracy, abs=1e-4)
    assert 7.5 < inception_score(x[:2000], dataset="fashion-mnist")[0] < 10.0  # real, balanced: 7.86 measured
