"""Every method: fit/sample/impute contracts, save/load round trip, reproducibility, method-specific
guarantees (replacement keeps observed pixels, EM changes only missing pixels, guidance helps)."""
import json

import numpy as np
import pytest
import torch

from ldmiss.config import ConfigError, deep_update, leaves, to_dict, under
from ldmiss.inputs import InputError
from ldmiss.methods import REGISTRY, ArtifactError, DiffPuter, LDMiss, NotFittedError, get_method_class, load_method

from .conftest import TINY

ALL = sorted(REGISTRY)


def test_every_registered_method_has_a_tiny_config_for_the_contract_tests():
    """The contract tests run every method at the sizes in tests/conftest.py's TINY: a method
    registered without one would escape them."""
    assert set(ALL) == set(TINY), f"add a TINY entry for {sorted(set(ALL) - set(TINY))}"
    assert {"ldmiss", "ddpm", "diffputer", "mean", "vae"} <= set(ALL)
    with pytest.raises(ValueError, match="unknown method"):
        get_method_class("gan")


@pytest.mark.parametrize("name", ALL)
def test_impute_keeps_observed_pixels_and_fills_missing(name, fitted, small_batch):
    x, m = small_batch
    method = fitted[name]
    for mode in method.impute_modes:
        out = method.impute(x[:8] * m[:8], m[:8], mode=mode, progress=False).mean
        assert out.shape == (8, 1, 28, 28) and out.dtype == np.float32
        assert np.array_equal(out[m[:8].numpy() == 1], x[:8].numpy()[m[:8].numpy() == 1])
        assert np.all((out >= 0) & (out <= 1)) and np.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_save_load_round_trip_gives_identical_outputs(name, fitted, small_batch, tmp_path):
    x, m = small_batch
    method = fitted[name]
    method.save(tmp_path / name)
    doc = json.loads((tmp_path / name / "config.json").read_text())
    assert doc["method"] == name and "fit_seconds" in doc["meta"]
    loaded = load_method(tmp_path / name, device="cpu")
    assert type(loaded) is type(method)
    for mode in method.impute_modes:
        a = method.impute(x[:6] * m[:6], m[:6], mode=mode, seed=5, progress=False).mean
        b = loaded.impute(x[:6] * m[:6], m[:6], mode=mode, seed=5, progress=False).mean
        assert np.array_equal(a, b)
    if method.generative:
        assert np.array_equal(method.sample(5, seed=1, progress=False), loaded.sample(5, seed=1, progress=False))
    else:
        with pytest.raises(NotImplementedError):
            loaded.sample(2)


SAMPLER_PATH = {"ldmiss": "prior", "ddpm": None, "diffputer": None}  # where each method's sampler config lives


@pytest.mark.parametrize("name", sorted(SAMPLER_PATH))
def test_inference_options_reach_the_sampler(name, fitted, tmp_path):
    """`--set <sampler>.steps=…` on a saved model changes what it draws (LDMiss's prior once kept
    its trained sampler and ignored the option); setting it back gives the same draws again."""
    fitted[name].save(tmp_path / name)
    method = load_method(tmp_path / name, device="cpu")
    holder = method.config if SAMPLER_PATH[name] is None else getattr(method.config, SAMPLER_PATH[name])
    steps = holder.sampler.steps

    def set_steps(k):
        opt = {"sampler": {"steps": k}}
        method.set_inference_options(opt if SAMPLER_PATH[name] is None else {SAMPLER_PATH[name]: opt})

    before = method.sample(4, seed=3, progress=False)
    set_steps(steps + 3)
    changed = method.sample(4, seed=3, progress=False)
    set_steps(steps)
    assert not np.allclose(before, changed)
    assert np.array_equal(before, method.sample(4, seed=3, progress=False))


@pytest.mark.parametrize("name", ["ldmiss", "ddpm"])
def test_seeded_fit_is_reproducible_and_ignores_missing_values(name, small_batch):
    x, m = small_batch
    cls = get_method_class(name)
    garbage = torch.where(m > 0, x, torch.rand_like(x))  # values at missing pixels must not matter
    a = cls(None, device="cpu", **TINY[name]).fit(x * m, m, seed=3, progress=False)
    b = cls(None, device="cpu", **TINY[name]).fit(garbage, m, seed=3, progress=False)
    c = cls(None, device="cpu", **TINY[name]).fit(x * m, m, seed=4, progress=False)
    sa, sb, sc = a.state_tensors(), b.state_tensors(), c.state_tensors()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_nan_marks_missing_in_fit(small_batch):
    x, m = small_batch
    x_nan = torch.where(m > 0, x, torch.full_like(x, float("nan")))
    a = get_method_class("mean")().fit(x_nan.numpy(), progress=False)
    b = get_method_class("mean")().fit(x * m, m, progress=False)
    assert torch.allclose(a.pixel_mean, b.pixel_mean)


def test_multiple_draws_give_mean_and_spread(fitted, small_batch):
    x, m = small_batch
    res = fitted["ldmiss"].impute(x[:4] * m[:4], m[:4], draws=3, progress=False)
    assert res.draws.shape == (3, 4, 1, 28, 28) and res.std.shape == (4, 1, 28, 28)
    assert np.allclose(res.mean, res.draws.mean(0), atol=1e-6)
    assert np.all(res.std[m[:4].numpy() == 1] == 0) and res.std[m[:4].numpy() == 0].max() > 0


def test_fully_missing_image_is_imputed_from_prior_with_warning(fitted):
    x = torch.zeros(2, 1, 28, 28)
    m = torch.ones_like(x)
    m[0] = 0
    with pytest.warns(UserWarning, match="no observed pixel"):
        out = fitted["ldmiss"].impute(x, m, progress=False).mean
    assert np.isfinite(out).all()


def test_guidance_lowers_observed_error_against_no_guidance(fitted, small_batch):
    x, m = small_batch
    model = fitted["ddpm"]
    gen = lambda: torch.Generator().manual_seed(0)
    with torch.inference_mode(False):
        guided, _ = model._impute(x * m, m, "guidance", gen(), False)
        model.config.impute.guidance.weight = 0.0
        try:
            unguided, _ = model._impute(x * m, m, "guidance", gen(), False)
        finally:
            model.config.impute.guidance.weight = 1.0
    err = lambda xhat: float(((m * (xhat - x)) ** 2).sum())
    assert err(guided) < err(unguided)


def test_em_iteration_changes_only_missing_pixels(fitted, small_batch):
    x, m = small_batch
    model = fitted["diffputer"]
    start = model.initial_fill(x * m, m)
    with torch.inference_mode():
        new = model.e_step(start, x * m, m, torch.Generator().manual_seed(0), False)
    assert torch.equal(new[m == 1], (x * m)[m == 1])
    assert not torch.equal(new[m == 0], start[m == 0])
    mean_fill = DiffPuter(None, device="cpu", init_fill="mean").initial_fill(x * m, m)
    assert torch.equal(mean_fill[m == 1], x[m == 1]) and mean_fill[m == 0].abs().sum() > 0


def test_vae_map_fits_observed_pixels_better_than_encoder(fitted, small_batch):
    x, m = small_batch
    vae = fitted["vae"]
    obs_err = {mode: float(((m * (vae._impute(x * m, m, mode, None, False)[0] - x)) ** 2).sum())
               for mode in ("encoder", "map")}
    assert obs_err["map"] < obs_err["encoder"]


def test_errors_for_unfitted_and_bad_calls(fitted, small_batch):
    x, m = small_batch
    with pytest.raises(NotFittedError):
        LDMiss().impute(x, m)
    with pytest.raises(InputError, match="shape"):
        fitted["ldmiss"].impute(np.zeros((2, 1, 14, 14)))
    with pytest.raises(InputError, match="draws"):
        fitted["ldmiss"].impute(x[:2], m[:2], draws=0)
    with pytest.raises(ValueError, match="mode"):
        fitted["ldmiss"].impute(x[:2], m[:2], mode="replacement")
    with pytest.raises(InputError, match="every pixel is missing"):
        LDMiss().fit(np.full((3, 28, 28), np.nan))
    with pytest.raises(ValueError, match="unknown option"):
        LDMiss(vae={"widht": 3})
    with pytest.raises(ValueError, match="valid: .*width"):
        LDMiss(prior={"net": {"widht": 3}})  # caught at construction, before any training
    with pytest.raises(ValueError, match=r"prior\.net\.cond: expected one of \['add', 'film'\]"):
        LDMiss(prior={"net": {"cond": "scale"}})


def test_missing_or_corrupted_model_directory(fitted, tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_method(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="config.json is missing"):
        load_method(tmp_path / "empty")
    d = fitted["mean"].save(tmp_path / "m")
    w = d / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-3] + b"xyz")
    with pytest.raises(ArtifactError, match="corrupted"):
        load_method(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_method(d)
    d2 = fitted["ldmiss"].save(tmp_path / "l")
    (d2 / "weights.safetensors").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_method(d2)
    with pytest.raises(ArtifactError, match="not 'ddpm'"):
        get_method_class("ddpm").load(fitted["mean"].save(tmp_path / "m2"))


def test_importance_weighted_bound_is_tighter():
    """MIWAE: with β = 1 the K-sample bound is ≥ the ELBO, so its loss is lower on average."""
    from ldmiss.nets import VAE
    torch.manual_seed(0)
    vae = VAE(width=8)
    x = torch.rand(32, 1, 28, 28)
    m = (torch.rand_like(x) > 0.5).float()
    g = torch.Generator().manual_seed(0)
    vae.requires_grad_(False)
    elbo = sum(float(vae.loss(x, m, beta=1.0, iw_samples=1, generator=g)) for _ in range(20)) / 20
    iw = sum(float(vae.loss(x, m, beta=1.0, iw_samples=20, generator=g)) for _ in range(20)) / 20
    assert iw < elbo


def test_encoder_drop_hides_observed_pixels_from_the_encoder_only():
    """``encoder_drop`` = p: the encoder sees about (1 − p) of the observed pixels, the hidden ones at
    the fill value and marked missing; the reconstruction still scores every observed pixel, and
    p = 0 feeds the encoder exactly (x̃, m)."""
    from ldmiss.nets import VAE
    torch.manual_seed(0)
    vae = VAE(width=8)
    m = (torch.rand(64, 1, 28, 28) > 0.3).float()
    x = torch.rand(64, 1, 28, 28) * m + 0.25 * (1 - m)  # missing pixels at the fill value 0.25
    seen = []
    vae.encoder.register_forward_hook(lambda mod, args, out: seen.append(args))
    g = torch.Generator().manual_seed(0)
    vae.loss(x, m, 1e-6, generator=g)
    assert torch.equal(seen[-1][0], x) and torch.equal(seen[-1][1], m)
    vae.loss(x, m, 1e-6, generator=g, encoder_drop=0.5, fill_value=0.25)
    x_enc, m_enc = seen[-1]
    assert (m_enc <= m).all() and abs(float(m_enc.sum() / m.sum()) - 0.5) < 0.02
    hidden = (m > 0) & (m_enc == 0)
    assert (x_enc[hidden] == 0.25).all() and torch.equal(x_enc[m_enc > 0], x[m_enc > 0])
    # the likelihood still counts every observed pixel: with a decoder that ignores z (and β = 0)
    # the loss is the same whatever the encoder saw, and not the ~half a hidden-pixel count would give

    class Constant(torch.nn.Module):
        def forward(self, z):
            return torch.full((z.shape[0], 1, 28, 28), 0.3)

    vae.decoder = Constant()
    assert torch.allclose(vae.loss(x, m, 0.0, generator=g), vae.loss(x, m, 0.0, generator=g, encoder_drop=0.5))


def _same_weights(a, b, prefix: str) -> bool:
    ta, tb = a.state_tensors(), b.state_tensors()
    return all(torch.equal(ta[k], tb[k]) for k in ta if k.startswith(prefix))


def _is_diagonal(mat: torch.Tensor) -> bool:
    return torch.equal(mat, torch.diag(torch.diagonal(mat)))


# (overrides, what they must change): each option of LDMiss checked for its effect against the
# TINY model fitted with the same seed (``fitted["ldmiss"]``), not just for running.
OPTION_EFFECTS = {
    "encoder_sees_mask": ({"vae": {"encoder_sees_mask": False}},
                          lambda new, base: new.vae.encoder.net[0].in_channels == 1
                          and base.vae.encoder.net[0].in_channels == 2),
    "iw_samples": ({"vae": {"iw_samples": 3}}, lambda new, base: not _same_weights(new, base, "vae.")),
    "sampler": ({"prior": {"sampler": {"method": "em"}}},
                lambda new, base: _same_weights(new, base, "") and not np.array_equal(
                    new.sample(4, seed=1, progress=False), base.sample(4, seed=1, progress=False))),
    "guidance": ({"impute": {"guidance": {"grad_through_score": False, "norm_match": False}}},
                 lambda new, base: _same_weights(new, base, "") and _imputed(new).cost.backward_nfe == 0
                 and _imputed(base).cost.backward_nfe > 0
                 and not np.array_equal(_imputed(new).mean, _imputed(base).mean)),
    "whiten": ({"prior": {"latent_norm": "whiten"}},
               lambda new, base: not _is_diagonal(new.prior.normalizer.forward_matrix)
               and _is_diagonal(base.prior.normalizer.forward_matrix)),
    "global": ({"prior": {"latent_norm": "global"}},
               lambda new, base: torch.unique(torch.diagonal(new.prior.normalizer.forward_matrix)).numel() == 1
               and _is_diagonal(new.prior.normalizer.forward_matrix)
               and torch.unique(torch.diagonal(base.prior.normalizer.forward_matrix)).numel() > 1),
    "loss and schedule": ({"prior": {"loss": {"prediction": "eps", "time_dist": "uniform"},
                                     "train": {"lr_schedule": "constant"}}},
                          lambda new, base: _same_weights(new, base, "vae.") and not _same_weights(new, base, "prior.")),
}


def _imputed(model):
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    m = (torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    return model.impute(x * m, m, seed=2, progress=False)


@pytest.mark.parametrize("option", list(OPTION_EFFECTS))
def test_ldmiss_options_have_their_effect(option, fitted, small_batch):
    x, m = small_batch
    overrides, effect = OPTION_EFFECTS[option]
    config = json.loads(json.dumps(TINY["ldmiss"]))
    deep_update(config, overrides)
    model = LDMiss(config, device="cpu").fit(x * m, m, seed=0, progress=False)
    assert effect(model, fitted["ldmiss"]), option


def test_shared_vae_cache_is_exact(small_batch, tmp_path):
    """ldmiss and vae train the same β-VAE for a (rate, seed): the second reuses the first's, and a
    cached fit ends in exactly the state a fresh fit reaches (weights and what follows it)."""
    x, m = small_batch
    vae_cfg = {"vae": TINY["ldmiss"]["vae"]}
    fresh = LDMiss(None, device="cpu", **TINY["ldmiss"]).fit(x * m, m, seed=3, progress=False)
    first = get_method_class("vae")(None, device="cpu", **vae_cfg).fit(x * m, m, seed=3, progress=False,
                                                                        cache_dir=tmp_path)
    cached = LDMiss(None, device="cpu", **TINY["ldmiss"]).fit(x * m, m, seed=3, progress=False, cache_dir=tmp_path)
    assert first.meta["vae_fit"]["cached"] is False and cached.meta["vae_fit"]["cached"] is True
    for a, b in ((fresh.state_tensors(), cached.state_tensors()), ):
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    other = LDMiss(None, device="cpu", **TINY["ldmiss"]).fit(x * m, m, seed=4, progress=False, cache_dir=tmp_path)
    assert other.meta["vae_fit"]["cached"] is False  # another seed is another key


def test_deterministic_imputers_compute_one_draw(fitted, small_batch):
    x, m = small_batch
    for name in ("mean", "vae"):
        res = fitted[name].impute(x[:4] * m[:4], m[:4], draws=3, progress=False)
        assert res.draws.shape[0] == 3 and np.all(res.std == 0) and np.allclose(res.mean, res.draws[0], atol=1e-6)
    res = fitted["ldmiss"].impute(x[:4] * m[:4], m[:4], draws=3, progress=False)
    assert res.std.max() > 0  # LDMiss's draws differ


def _nested(path: str, value) -> dict:
    out = value
    for key in reversed(path.split(".")):
        out = {key: out}
    return out


def _changed_options(cls, base_overrides: dict, options) -> dict:
    """Overrides that change every numeric leaf under each of ``options`` (dotted paths) that still
    makes a valid config (ints + 1, floats × 1.5), and each option that is itself a choice (a string
    leaf with a ``choices`` constraint) to another of its choices."""
    from ldmiss.config import CONSTRAINTS
    full = dict(leaves(to_dict(cls(None, device="cpu", **base_overrides).config)))
    out, per_option, free_text = {}, {}, set()
    for option in options:
        for path, value in full.items():
            if not under(path, (option,)):
                continue
            if isinstance(value, bool):
                candidates = [not value]
            elif isinstance(value, str) and path == option:
                candidates = [c for (_, leaf), rule in CONSTRAINTS.items() if leaf == path.rsplit(".", 1)[-1]
                              and rule[0] == "choices" for c in rule[1] if c != value]
                if not candidates:  # a name checked by a rule (e.g. a registry entry): nothing generic to try
                    free_text.add(option)
            elif not isinstance(value, (int, float)):
                continue
            else:
                candidates = [value + 1] if isinstance(value, int) else ([value * 1.5, value * 0.5] if value else [0.5])
            for new in candidates:
                trial = json.loads(json.dumps(base_overrides))
                deep_update(trial, json.loads(json.dumps(out)))  # a copy: a refused trial must not leak into out
                deep_update(trial, _nested(path, new))
                try:
                    cls.validate_overrides(trial)
                except ConfigError:
                    continue
                deep_update(out, _nested(path, new))
                per_option[option] = per_option.get(option, 0) + 1
                break
    missing = set(options) - set(per_option) - free_text
    assert not missing, f"nothing to change under {missing}"
    return out


@pytest.mark.parametrize("name", ALL)
def test_every_inference_option_can_be_set_on_a_saved_model(name, fitted, tmp_path):
    """What the sweep may swap on a cached fit (FIT_INDEPENDENT), and what the fit reads only to
    sample, a user may change on a saved model (`ldmiss impute --set …`: `vae.map_steps` was once
    refused); an option that shaped the weights is refused, naming the allowed ones."""
    cls = get_method_class(name)
    assert set(cls.FIT_INDEPENDENT) <= set(cls.inference_options())
    fitted[name].save(tmp_path / name)
    method = load_method(tmp_path / name, device="cpu")
    changed = _changed_options(cls, {}, cls.inference_options())
    method.set_inference_options(changed)
    now = dict(leaves(to_dict(method.config)))
    assert all(now[path] == value for path, value in leaves(changed))
    training = [path for path, _ in leaves(to_dict(method.config)) if not under(path, cls.inference_options())]
    if training:  # a method whose fit reads none of its options (the classical baselines) has none to refuse
        with pytest.raises(ConfigError, match="not an inference option"):
            method.set_inference_options(_nested(training[0], 0))


@pytest.mark.parametrize("name", ALL)
def test_fit_independent_options_do_not_change_the_fit(name, small_batch):
    """Method.FIT_INDEPENDENT is a promise the sweep's fit cache relies on (it reuses a fit across
    configs that differ only there): fit with each of those options changed, from the same seed,
    and the weights must be identical — and the fit settings equal while the configs differ."""
    x, m = small_batch
    cls = get_method_class(name)
    base = json.loads(json.dumps(TINY[name]))
    independent = cls.fit_independent(cls(None, device="cpu", **base).config)  # FIT_INDEPENDENT, as this config has it
    if not independent:
        pytest.skip(f"{name}: every option counts for its fit")
    changed = json.loads(json.dumps(base))
    deep_update(changed, _changed_options(cls, base, independent))
    a = cls(None, device="cpu", **base)
    b = cls(None, device="cpu", **changed)
    assert to_dict(a.config) != to_dict(b.config) and cls.fit_settings(a.config) == cls.fit_settings(b.config)
    ta = a.fit(x[:32] * m[:32], m[:32], seed=0, progress=False).state_tensors()
    tb = b.fit(x[:32] * m[:32], m[:32], seed=0, progress=False).state_tensors()
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert a.adopt_config(b.config).config is b.config


def test_diffputer_sampler_shapes_its_fit(small_batch):
    """The counter-case that keeps DiffPuter's sampler out of FIT_INDEPENDENT: its E-step samples."""
    x, m = small_batch
    steps = TINY["diffputer"]["sampler"]["steps"]
    other = {**TINY["diffputer"], "sampler": {**TINY["diffputer"]["sampler"], "steps": steps + 1}}
    ta = DiffPuter(None, device="cpu", **TINY["diffputer"]).fit(x[:32] * m[:32], m[:32], seed=0, progress=False)
    tb = DiffPuter(None, device="cpu", **other).fit(x[:32] * m[:32], m[:32], seed=0, progress=False)
    assert DiffPuter.fit_settings(ta.config) != DiffPuter.fit_settings(tb.config)
    a, b = ta.state_tensors(), tb.state_tensors()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="options the fit depends on"):
        ta.adopt_config(tb.config)


def test_a_partial_config_table_keeps_the_parents_defaults():
    """A dict config naming one nested key starts from the method's defaults for the rest of that
    table (the latent prior's tuned schedule), exactly as keyword overrides do."""
    from_dict_cfg = LDMiss({"prior": {"train": {"steps": 5}}}, device="cpu").config
    kwargs_cfg = LDMiss(None, device="cpu", prior={"train": {"steps": 5}}).config
    assert to_dict(from_dict_cfg) == to_dict(kwargs_cfg)
    assert from_dict_cfg.prior.train.lr == LDMiss.config_cls().prior.train.lr == 2e-3
