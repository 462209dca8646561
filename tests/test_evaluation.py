"""The evaluation's floors and checks on known cases, and configuration errors caught up front."""
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ldmiss.cli import main
from ldmiss.config import ConfigError
from ldmiss.experiments import load_preset
from ldmiss.experiments.config import experiment_from_dict
from ldmiss.experiments.config import load_preset as _load
from ldmiss.experiments.evaluation import RunContext, decoder_floor, evaluate, metric_floor
from ldmiss.methods import ArtifactError, Cost, load_method
from ldmiss.methods.base import Method
from ldmiss.metrics import FIDReference, memorization_ratio


@dataclass
class _NoConfig:
    fill_value: float = 0.0


class ExactAutoencoder(Method):
    """Reconstructs its input exactly: its decoder floor must be a perfect score."""

    name = "exact-ae"
    config_cls = _NoConfig
    generative = False
    autoencoder = True

    def _build(self, image_shape):
        pass

    def _fit(self, x, obs_mask, generator, progress, options):
        pass

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        return x, Cost()

    def _reconstruct(self, x, obs_mask):
        return x

    def _decoder_floor(self, x, obs_mask, steps):
        return x


def _context(method, x_test, m_test, held_out, ref, x_train=None):
    x_train = x_test if x_train is None else x_train
    cfg = load_preset("smoke")
    return RunContext(cfg, method, 0.5, 0, x_train, torch.ones_like(x_train), x_test, m_test, held_out, ref)


@pytest.fixture(scope="module")
def digits(mnist_test):
    x = torch.from_numpy(mnist_test.images[:600]).float() / 255
    x = x if x.ndim == 4 else x[:, None]
    return x[:300], x[300:600]


def test_decoder_floor_is_perfect_for_an_exact_autoencoder(digits):
    x, other = digits
    from ldmiss.missing import mcar_mask
    m = mcar_mask(x.shape, 0.5, seed=0)
    method = ExactAutoencoder().fit(x * m, m, progress=False)
    ctx = _context(method, x, m, other, FIDReference(x))
    floor = decoder_floor(ctx)
    assert floor["mse"] == 0.0
    assert abs(floor["fid"]) < 1e-2  # same images as the reference
    assert floor["n"] == len(x)
    real = metric_floor(ctx)  # other real digits against a 300-image reference
    assert 1.0 < real["fid"] < 60 and real["n"] == len(other)  # FID is biased upwards at small N


def test_evaluate_on_a_fitted_ldmiss_records_floors_target_gap_and_memorisation(fitted, small_batch, digits):
    x, m = small_batch
    real, other = digits
    ctx = _context(fitted["ldmiss"], x, m, other[:64], FIDReference(real), x_train=real[:64])
    ctx.cfg.n_eval, ctx.cfg.draws = 32, 3
    res = evaluate(ctx)
    assert {"metric_floor", "sample", "memorization", "decoder_floor", "prior_target", "impute",
            "prior_gap"} <= set(res)
    assert res["prior_gap"] == pytest.approx(res["sample"]["fid"] / res["prior_target"]["fid"])
    imp = res["impute"]["guidance"]
    assert imp["draws"] == 3 and np.isfinite([imp["mse"], imp["mse_mean"]]).all()
    assert imp["mse_mean"] <= imp["mse"] * 1.05  # the mean of draws is never much worse than one draw
    assert res["memorization"]["n_real"] == 64
    mean_only = evaluate(_context(fitted["mean"], x, m, other[:64], FIDReference(real)))
    assert "sample" not in mean_only and "decoder_floor" not in mean_only and "metric_floor" in mean_only


def test_memorisation_ratio_detects_copies(digits):
    train, held = digits
    assert memorization_ratio(train[:100], train, held)["ratio"] < 0.05  # copies of training images
    fresh = memorization_ratio(held[:100], train[:150], held[150:])  # unseen real digits
    assert 0.7 < fresh["ratio"] < 1.4


def test_sweep_config_errors_are_one_line_before_any_run(tmp_path, capsys):
    cases = [(["--set", "n_evl=3"], "n_evl"), (["--set", "n_eval=abc"], "n_eval: expected int"),
             (["--rates", "1.5"], "train_rates: 1.5"), (["--set", "overrides.ldmiss.impute.guidance.weight=abc"], "weight"),
             (["--set", "overrides.ldmiss.prior.train.stpes=3"], "stpes"), (["--methods", "ldmis"], "ldmis"),
             (["--set", "autoencoder.widht=3"], "autoencoder.widht"),
             (["--set", "autoencoder.encoder_drop=abc"], "autoencoder.encoder_drop: expected float"),
             (["--set", "autoencoder.encoder_drop=2.0"], "encoder_drop")]
    for extra, needle in cases:
        assert main(["sweep", "--preset", "smoke", "--out", str(tmp_path / "r"), "--quiet", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error:") and needle in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()  # nothing started


def test_train_with_a_bad_value_saves_nothing(tmp_path, capsys):
    for bad in ("prior.train.steps=abc", "impute.guidance.weight=abc", "prior.sampler.method=rk45", "vae.widht=3"):
        out = tmp_path / bad.split("=")[0]
        assert main(["train", "--method", "ldmiss", "--preset", "smoke", "--out", str(out), "--quiet",
                     "--set", bad]) == 2
        err = capsys.readouterr().err
        assert bad.split("=")[0].split(".")[-1] in err and "Traceback" not in err
        assert not out.exists()


def test_a_preset_table_typo_is_found_at_load(tmp_path):
    text = (_load.__globals__["PRESET_DIR"] / "smoke.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("prior.net = {", "prior.nett = {"))
    with pytest.raises(ConfigError, match="nett"):
        _load(str(bad))
    with pytest.raises(ConfigError, match="train_rates"):
        experiment_from_dict({"name": "x", "train_rates": [0.2, "a"]})


def test_a_tampered_config_json_does_not_load(fitted, tmp_path):
    fitted["ldmiss"].save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    doc["config"]["impute"]["guidance"]["weight"] = "abc"
    (tmp_path / "m" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="impute.guidance.weight"):
        load_method(tmp_path / "m")


def test_settings_diff_names_fields_and_accepts_new_options_at_their_default():
    from ldmiss.experiments.store import settings_diff
    old = {"draws": 1, "config": {"train": {"steps": 10}}}
    assert settings_diff(old, old) == []
    assert settings_diff(old, {"draws": 2, "config": {"train": {"steps": 10}}}) == ["draws: 1 → 2"]
    new = {"draws": 1, "config": {"train": {"steps": 10, "warmup": 0}}}
    assert settings_diff(old, new) == ["config.train.warmup: '<absent>' → 0"]
    defaults = {"config": {"train": {"warmup": 0}}}
    assert settings_diff(old, new, defaults) == []  # an option added since, at its default
    assert settings_diff(old, {"draws": 1, "config": {"train": {"steps": 10, "warmup": 5}}}, defaults) == [
        "config.train.warmup: '<absent>' → 5"]


def test_compare_imputers_runs_each_conditioner_at_its_budget_and_resumes(fitted, tmp_path):
    """Fast lane version of the compare-imputers check: steps chosen from each conditioner's cost
    formula, the NFE each point spent recorded from the result's cost, and a rerun reusing points."""
    from ldmiss.experiments.compare import compare_imputers
    fitted["ldmiss"].save(tmp_path / "m")
    kw = dict(preset="smoke", budgets=(4,), modes=["guidance", "smc"], draws=2, n=6, device="cpu", progress=False,
              overrides={"impute": {"smc": {"particles": 2}}}, log=lambda *_: None)
    rows = compare_imputers(tmp_path / "m", tmp_path / "cmp", **kw)
    by_mode = {r["mode"]: r for r in rows}
    assert by_mode["guidance"]["steps"] == 4 and by_mode["guidance"]["nfe"] == 4
    assert by_mode["smc"]["steps"] == 2 and by_mode["smc"]["nfe"] == 4  # 2 particles × 2 steps
    assert all(0 <= r["coverage90"] <= 1 and r["mse"] > 0 for r in rows)
    written = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cmp" / "points").iterdir()}
    assert compare_imputers(tmp_path / "m", tmp_path / "cmp", **kw) == rows
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cmp" / "points").iterdir()} == written


def test_the_posters_numbers_cover_its_rates():
    from ldmiss.experiments.poster import FIG1, FIG3, RATES_FIG1, RATES_FIG3
    for figure, rates in ((FIG1, RATES_FIG1), (FIG3, RATES_FIG3)):
        for metric, series in figure.items():
            for method, values in series.items():
                assert tuple(values) == rates, (metric, method)
    assert all(1 <= v <= 10 for s in (FIG1["sample_is"], FIG3["impute_is"]) for m in s.values() for v in m.values())


def test_a_sweep_checks_its_config_once(tmp_path, monkeypatch, capsys):
    """Preset, command-line changes and --set are checked together, once, and the sweep does not
    check them again; each mask is probed once."""
    import ldmiss.experiments.config as config
    calls = {"check": 0, "probe": 0}
    check, probe = config._check_experiment, config._probe_masks

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(config, "_check_experiment", counted("check", check))
    monkeypatch.setattr(config, "_probe_masks", counted("probe", probe))
    assert main(["sweep", "--preset", "smoke", "--methods", "mean", "--out", str(tmp_path), "--quiet", "--device", "cpu",
                 "--set", "n_eval=8", "--set", "n_ref=50"]) == 0
    assert calls == {"check": 1, "probe": 1}


def test_the_decoder_floor_bounds_the_imputations_that_decode_a_latent(fitted, small_batch):
    """The 0.1 "reconstruction floor" (decode ∘ encode of complete images, which a masked-trained encoder
    never sees) scored above the imputations it claimed to bound; the decoder floor searches the latent
    with the true pixels in hand, from the encoder imputation, keeping the best: it is at most every
    imputation of these methods, and with no search it is the encoder imputation itself."""
    from ldmiss.metrics import missing_mse
    x, m = small_batch
    x, m = x[:32], m[:32]
    for name in ("ldmiss", "vae"):
        method = fitted[name]
        floor = missing_mse(method.decoder_floor(x.numpy(), m.numpy()), x, m)
        start = method.decoder_floor(x.numpy(), m.numpy(), steps=0)
        encoder = method.impute((x * m).numpy(), m.numpy(), mode="encoder" if name == "vae" else None, seed=0).mean
        if name == "vae":
            np.testing.assert_allclose(start, encoder, atol=1e-5)
        modes = ["encoder", "map"] if name == "vae" else [None]
        for mode in modes:
            own = missing_mse(method.impute((x * m).numpy(), m.numpy(), mode=mode, seed=0).mean, x, m)
            assert floor <= own, (name, mode, floor, own)
        assert floor < missing_mse(start, x, m)  # the search moves below its start
        restored = method.decoder_floor(x.numpy(), m.numpy())
        np.testing.assert_array_equal(restored[m.numpy() > 0], x.numpy()[m.numpy() > 0])  # observed pixels as given
