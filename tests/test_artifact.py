"""The artifact format and its history: a model saved by 0.1.0 still loads, old config spellings are
upgraded (with a warning where a user typed them), and a run folder links its fit's weights."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ldmiss.config import to_dict
from ldmiss.experiments import store
from ldmiss.experiments.config import experiment_from_dict
from ldmiss.methods import LDMiss, PixelDDPM, load_method


def _as_0_1_0(doc: dict) -> dict:
    """What 0.1.0 wrote for the same model: format v1, ``guidance`` beside ``impute`` (and the pixel
    models' ``resample_jumps`` at the top level), the last imputation's cost in ``meta``."""
    config = json.loads(json.dumps(doc["config"]))
    config["guidance"] = config["impute"].pop("guidance")
    replacement = config["impute"].pop("replacement", None)
    if replacement is not None:
        config["resample_jumps"] = replacement["resample_jumps"]
    return {**doc, "format": "ldmiss-artifact-v1", "ldmiss_version": "0.1.0", "config": config,
            "meta": {**doc["meta"], "impute_cost": {"guidance": {"steps": 4, "nfe": 4.0, "backward_nfe": 4.0}}}}


@pytest.mark.parametrize("name", ["ldmiss", "ddpm"])
def test_a_model_saved_by_0_1_0_loads_with_its_settings(fitted, small_batch, tmp_path, name):
    method = fitted[name]
    method.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    old = _as_0_1_0(doc)
    old["config"]["guidance"]["weight"] = 2.5  # a non-default value must survive the upgrade
    if name == "ddpm":
        old["config"]["resample_jumps"] = 3
    (tmp_path / "m" / "config.json").write_text(json.dumps(old))
    loaded = load_method(tmp_path / "m", device="cpu")
    assert loaded.config.impute.guidance.weight == 2.5 and "impute_cost" not in loaded.meta
    if name == "ddpm":
        assert loaded.config.impute.replacement.resample_jumps == 3
    x, m = small_batch
    loaded.config.impute.guidance.weight = method.config.impute.guidance.weight
    a = loaded.impute(x[:3] * m[:3], m[:3], mode="guidance", seed=2, progress=False).mean
    b = method.impute(x[:3] * m[:3], m[:3], mode="guidance", seed=2, progress=False).mean
    assert np.array_equal(a, b)


def test_old_option_spellings_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="'guidance' is now 'impute.guidance'"):
        model = LDMiss(None, device="cpu", guidance={"weight": 3.0})
    assert model.config.impute.guidance.weight == 3.0
    with pytest.warns(DeprecationWarning, match="impute.replacement.resample_jumps"):
        assert PixelDDPM(None, device="cpu", resample_jumps=4).config.impute.replacement.resample_jumps == 4
    with pytest.warns(DeprecationWarning, match="'method' is now 'overrides'"):
        cfg = experiment_from_dict({"name": "x", "method": {"ldmiss": {"prior": {"train": {"steps": 5}}}}})
    assert cfg.overrides == {"ldmiss": {"prior": {"train": {"steps": 5}}}}


def test_stored_run_settings_of_0_1_0_read_in_todays_spelling():
    new = {"config": to_dict(PixelDDPM.config_cls())}
    old_config = json.loads(json.dumps(new["config"]))
    old_config["guidance"] = old_config["impute"].pop("guidance")
    old_config["resample_jumps"] = old_config["impute"].pop("replacement")["resample_jumps"]
    doc = {"method": "ddpm", "settings": {"config": old_config}}
    upgraded = store.stored_settings(doc)
    assert upgraded["config"]["impute"]["replacement"] == {"resample_jumps": 1} and "guidance" not in upgraded["config"]
    assert store.settings_diff(upgraded, new, new) == []  # so a finished 0.1.0 run still counts as finished


@pytest.mark.slow
def test_a_run_folder_links_the_fit_caches_weights(tmp_path):
    """One copy of the weights on disk: the run's model is a hard link to the fit cache's, and it
    stays loadable when the cache is deleted."""
    import shutil

    from ldmiss.experiments import run_sweep
    from tests.conftest import TINY
    cfg = experiment_from_dict({"name": "link", "methods": ["vae"], "train_rates": [0.5], "seeds": [0],
                                "train_size": 64, "n_eval": 8, "n_ref": 50, "grid": 2,
                                "overrides": {"vae": TINY["vae"]}})
    run_sweep(cfg, tmp_path, progress=False)
    weights = tmp_path / "vae" / "rate0.50_seed0" / "model" / "weights.safetensors"
    cached = list((tmp_path / "_cache" / "fits").glob("vae-*/weights.safetensors"))
    assert len(cached) == 1 and os.path.samefile(weights, cached[0])
    shutil.rmtree(tmp_path / "_cache")
    assert load_method(weights.parent, device="cpu").fitted
