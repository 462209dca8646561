"""Bad or odd inputs at the API and CLI boundary: each is refused with a one-line user error (exit 2
at the CLI) instead of being accepted silently, truncated, or failing later with a traceback. Each
case here was reproduced on 0.1 (issue 29's list)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ldmiss.cli import main
from ldmiss.config import ConfigError
from ldmiss.errors import Diverged, UserError
from ldmiss.methods import get_method_class
from ldmiss.training import TrainConfig, train


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_config_values_are_refused(value):
    """``--set guidance.weight=nan`` imputed NaN everywhere with exit 0; in a sweep it crashed MKL."""
    with pytest.raises(ConfigError, match="finite"):
        get_method_class("ldmiss")(None, device="cpu", impute={"guidance": {"weight": value}})
    with pytest.raises(ConfigError, match="finite"):
        get_method_class("ddpm")(None, device="cpu", train={"lr": value})


def test_a_non_finite_set_value_at_the_cli_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["sweep", "--preset", "smoke", "--out", str(tmp_path), "--quiet", "--set",
                 "overrides.ldmiss.impute.guidance.weight=nan"])
    assert code == 2 and "finite" in capsys.readouterr().err


def test_a_diverging_loss_names_the_step_and_the_setting_to_change():
    net = torch.nn.Linear(4, 4)
    data = (torch.randn(64, 4) * 100,)
    loss = lambda x, g: ((net(x) - x) ** 2).mean()  # noqa: E731
    with pytest.raises(Diverged, match=r"at step \d+ of 50.*train\.lr = 1e\+20"):
        train(net, loss, data, TrainConfig(steps=50, batch_size=16, lr=1e20, ema_decay=0), torch.Generator(), progress=False)
    assert issubclass(Diverged, UserError)  # the CLI prints it as one line, exit 2


@pytest.mark.parametrize("draws", [2.5, "3", True, 0])
def test_draws_must_be_a_whole_number_of_at_least_one(fitted, small_batch, draws):
    x, m = small_batch
    with pytest.raises(UserError, match="draws"):
        fitted["mean"].impute(x[:2] * m[:2], m[:2], draws=draws, progress=False)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_seeds_must_be_whole_numbers_from_zero(fitted, seed):
    with pytest.raises(UserError, match="seed"):
        fitted["ldmiss"].sample(2, seed=seed, progress=False)


def test_seed_none_draws_a_fresh_seed_and_records_it(small_batch):
    from tests.conftest import TINY
    x, m = small_batch
    model = get_method_class("mean")(None, device="cpu", **TINY["mean"]).fit(x * m, m, seed=None, progress=False)
    assert isinstance(model.meta["fit_seed"], int) and model.meta["fit_seed"] >= 0


@pytest.mark.parametrize("argv", [["sweep", "--jobs", "0"], ["sweep", "--jobs", "-1"], ["sweep", "--seeds", "-3"],
                                  ["sample", "MODEL", "-n", "0"], ["impute", "MODEL", "--input", "x.npy", "--draws", "0"]])
def test_the_cli_refuses_counts_below_their_minimum(argv, capsys, tmp_path):
    if argv[0] == "sweep":  # were the check to go, the sweep that ran would be a small one
        argv = argv + ["--preset", "smoke", "--quiet", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "must be ≥" in capsys.readouterr().err


def test_the_mean_of_several_draws_keeps_observed_pixels_bit_for_bit(fitted, small_batch):
    """With draws > 1 the mean of D copies of an observed value moved it by up to 6e-8."""
    x, m = small_batch
    res = fitted["ldmiss"].impute(x[:16] * m[:16], m[:16], draws=3, progress=False)
    observed = m[:16].numpy() > 0
    assert np.array_equal(res.mean[observed], x[:16].numpy()[observed])


def test_the_empty_image_warning_says_what_the_method_does(fitted, small_batch):
    """``vae``'s warning spoke of a prior that method does not have."""
    x, m = small_batch
    m = m[:2].clone()
    m[0] = 0
    for name, words in (("vae", "encoder"), ("mean", "training means"), ("ldmiss", "prior")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fitted[name].impute(x[:2] * m, m, progress=False)
        text = " ".join(str(w.message) for w in caught if "no observed pixel" in str(w.message))
        assert words in text and (name == "ldmiss" or "prior" not in text), (name, text)


def test_the_api_and_the_cli_apply_the_same_likelihood_rule_and_say_so(small_batch, tmp_path, capsys):
    """The API's fit ignored the likelihood the data suggests (Bernoulli for RGB photos, silently)."""
    from tests.conftest import TINY
    x, m = small_batch
    grey = x * 0.5 + 0.25  # grey levels, far from binary
    with pytest.warns(UserWarning, match="chose 'gaussian'"):
        model = get_method_class("vae")(None, device="cpu", **TINY["vae"]).fit(grey * m, m, seed=0, progress=False)
    assert model.config.vae.likelihood == "gaussian" and model.meta["vae_likelihood"]["likelihood"] == "gaussian"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MNIST is near-binary: Bernoulli, the poster's, without a word
        mnist = get_method_class("vae")(None, device="cpu", **TINY["vae"]).fit(x * m, m, seed=0, progress=False)
    assert mnist.config.vae.likelihood == "bernoulli"
    chosen = {**TINY["vae"], "vae": {**TINY["vae"]["vae"], "likelihood": "cbernoulli"}}
    explicit = get_method_class("vae")(None, device="cpu", **chosen)
    assert explicit.fit(grey * m, m, seed=0, progress=False).config.vae.likelihood == "cbernoulli"
    np.save(tmp_path / "grey.npy", np.where(m.numpy() > 0, grey.numpy(), np.nan).astype(np.float32))
    assert main(["train", "--method", "vae", "--preset", "smoke", "--input", str(tmp_path / "grey.npy"),
                 "--out", str(tmp_path / "model"), "--quiet", "--device", "cpu"]) == 0
    assert "decoder likelihood gaussian, latent 2×7×7" in capsys.readouterr().out


def test_outputs_are_checked_before_any_work(fitted, small_batch, tmp_path, capsys):
    """``impute --png nodir/x.png`` failed after writing the .npz, ``sample --out nodir/…`` after
    sampling, and ``train --out FILE`` with a traceback."""
    x, m = small_batch
    fitted["mean"].save(tmp_path / "model")
    np.save(tmp_path / "x.npy", np.where(m[:4].numpy() > 0, x[:4].numpy(), np.nan).astype(np.float32))
    (tmp_path / "a_file").write_text("")
    model, x_in = str(tmp_path / "model"), str(tmp_path / "x.npy")
    cases = [
        (["impute", model, "--input", x_in, "--out", str(tmp_path / "o.npz"), "--png", str(tmp_path / "nodir" / "x.png")],
         "does not exist"),
        (["sample", str(tmp_path / "model"), "--out", str(tmp_path / "nodir" / "s.npy")], "does not exist"),
        (["train", "--method", "mean", "--preset", "smoke", "--out", str(tmp_path / "a_file")], "is a file"),
        (["sweep", "--preset", "smoke", "--out", str(tmp_path / "a_file"), "--quiet"], "is a file"),
        (["impute", model, "--input", x_in, "--out", str(tmp_path / "o.txt")], "must end in"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, (argv, message)
    assert not (tmp_path / "o.npz").exists()  # nothing was written before the refusal


def test_saved_weights_are_readable_by_others(fitted, tmp_path):
    import stat
    fitted["mean"].save(tmp_path / "m")
    for name in ("weights.safetensors", "config.json"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o644, name


@pytest.mark.parametrize("argv", [["--help"], ["--version"], []])
def test_help_and_version_answer_without_importing_torch(argv):
    """Every command took ≈ 6 s to start (2.7 s of it importing torch), even --help and --version."""
    import subprocess
    import sys
    code = ("import sys\nfrom ldmiss.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)" % (argv,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr


def test_missing_pixels_are_drawn_in_a_pattern_that_cannot_be_content():
    """``--png`` and Fig. 4 drew missing pixels as 0.5 grey, indistinguishable from mid-grey content."""
    from ldmiss.experiments.figures import show_missing
    grey = np.full((1, 1, 4, 4), 0.5, np.float32)
    mask = np.ones_like(grey)
    mask[0, 0, 1:3, 1:3] = 0
    out = show_missing(grey, mask)
    assert out.shape == (1, 3, 4, 4)
    assert np.all(out[0, :, 0, 0] == 0.5)  # observed: the image, in grey
    hole = out[0, :, 1:3, 1:3]
    assert np.all(hole[1:] == 0) and set(np.unique(hole[0])) == {0.0, 1.0}  # a red/black checkerboard
    rgb = np.random.default_rng(0).random((1, 3, 4, 4)).astype(np.float32)
    rgb_mask = np.ones_like(rgb)
    rgb_mask[0, 2, 0, 0] = 0  # one channel missing marks the pixel
    assert np.array_equal(show_missing(rgb, rgb_mask)[0, :, 0, 0], [1.0, 0.0, 0.0])


def test_mask_files_model_paths_and_saved_shapes_give_one_line_errors(fitted, small_batch, tmp_path, capsys):
    """``--mask x.npz`` holding ``obs_mask`` said "has no array None"; a model path that is a file said
    it does not exist; a config.json whose image shape is a string was a TypeError."""
    import json
    x, m = small_batch
    np.save(tmp_path / "x.npy", (x[:4] * m[:4]).numpy())
    np.savez(tmp_path / "mask.npz", obs_mask=m[:4].numpy())
    fitted["mean"].save(tmp_path / "model")
    out = tmp_path / "o.npy"
    assert main(["impute", str(tmp_path / "model"), "--input", str(tmp_path / "x.npy"), "--mask", str(tmp_path / "mask.npz"),
                 "--out", str(out), "--quiet"]) == 0
    assert np.load(out).shape == (4, 1, 28, 28)
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "x.npy"), "--out", str(tmp_path / "s.npy")]) == 2
    assert "is a file; a model is the directory" in capsys.readouterr().err
    # a folder of arrays is not a folder of images (image folders are imputed: tests/test_image_impute.py)
    assert main(["impute", str(tmp_path / "model"), "--input", str(tmp_path), "--out", str(out)]) == 2
    assert "no image files" in capsys.readouterr().err
    config = tmp_path / "model" / "config.json"
    doc = json.loads(config.read_text())
    doc["image_shape"] = "1x28x28"
    config.write_text(json.dumps(doc))
    assert main(["impute", str(tmp_path / "model"), "--input", str(tmp_path / "x.npy"), "--out", str(out)]) == 2
    assert "image_shape must be three positive integers" in capsys.readouterr().err


def test_a_sweep_on_a_device_that_is_not_there_is_one_error_up_front(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["sweep", "--preset", "smoke", "--device", "cuda", "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU" in err and not (tmp_path / "s").exists()


def test_train_checkpoints_beside_the_model_and_resumes_from_there(small_batch, tmp_path, monkeypatch):
    """``ldmiss train`` kept no checkpoint, so a killed fit restarted from zero (a sweep's run resumes)."""
    from ldmiss.methods.base import Method
    x, m = small_batch
    np.save(tmp_path / "x.npy", np.where(m[:32].numpy() > 0, x[:32].numpy(), np.nan).astype(np.float32))
    seen = []
    fit = Method.fit

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("checkpoint_dir"))
        return fit(self, *args, **kwargs)
    monkeypatch.setattr(Method, "fit", spy)
    argv = ["train", "--method", "ldmiss", "--preset", "smoke", "--input", str(tmp_path / "x.npy"), "--out",
            str(tmp_path / "model"), "--quiet", "--device", "cpu"]
    assert main(argv) == 0 and main(argv) == 0
    assert seen[0] is not None and seen[0] == seen[1]  # the same fit → the same checkpoints (resumable)
    assert seen[0].parent == tmp_path / "model" and not seen[0].exists()  # removed once the model is saved
    assert main(argv + ["--seed", "1"]) == 0 and seen[2] != seen[0]  # another fit never reads them


def test_the_likelihood_rule_counts_observed_pixels_only():
    """A grey-level folder with transparent (missing, stored as 0) pixels got Bernoulli from the sweep
    and Gaussian from the fit: the sweep counted the missing zeros as near-binary pixels."""
    from ldmiss.data.datasets import suggest_likelihood
    grey = np.full((10, 1, 8, 16), 128, np.uint8)
    observed = np.ones_like(grey)
    observed[:, :, :, 1:] = 0  # 15/16 of the pixels missing, stored as 0
    assert suggest_likelihood(np.where(observed > 0, grey, 0).astype(np.uint8)) == "bernoulli"  # the old count
    assert suggest_likelihood(np.where(observed > 0, grey, 0).astype(np.uint8), observed) == "gaussian"


def test_the_package_still_offers_its_submodules():
    import ldmiss
    assert callable(ldmiss.methods.get_method_class) and callable(ldmiss.missing.mcar_mask)
