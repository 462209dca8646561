"""End-to-end: the `smoke` preset through the CLI (sweep, resume, report) and train/sample/impute."""
import json
import shutil

import numpy as np
import pytest
import torch

from ldmiss.cli import main
from ldmiss.config import to_dict
from ldmiss.experiments import load_preset, parse_set, store
from ldmiss.methods import get_method_class


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    assert main(["sweep", "--preset", "smoke", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return out


@pytest.mark.slow
def test_smoke_sweep_writes_every_run(smoke_run):
    runs = store.load_runs(smoke_run)
    assert sorted(r["method"] for r in runs) == ["biharmonic", "ddpm", "diffputer", "ldmiss", "mean", "neighbours", "vae"]
    for r in runs:
        assert (smoke_run / r["method"] / "rate0.50_seed0" / "model" / "config.json").is_file()
        for imp in r["metrics"]["impute"].values():
            assert np.isfinite([imp["mse"], imp["fid"], imp["is"]]).all() and imp["n"] == 64
        assert r["timings"]["fit_seconds"] > 0
    ddpm = next(r for r in runs if r["method"] == "ddpm")
    assert set(ddpm["metrics"]["impute"]) == {"replacement", "guidance"}
    assert np.isfinite(ddpm["metrics"]["sample"]["fid"])


@pytest.mark.slow
def test_same_test_mask_for_every_method(smoke_run):
    masks = [np.load(smoke_run / m / "rate0.50_seed0" / "examples.npz")["test_mask"] for m in ("ldmiss", "ddpm", "mean")]
    assert all(np.array_equal(masks[0], k) for k in masks[1:])


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_cleans_stale(smoke_run, capsys):
    stale = smoke_run / "ldmiss" / "rate0.50_seed0.tmp-999"
    stale.mkdir()
    before = (smoke_run / "ldmiss" / "rate0.50_seed0" / "metrics.json").stat().st_mtime_ns
    assert main(["sweep", "--preset", "smoke", "--out", str(smoke_run), "--quiet"]) == 0
    assert "0 run(s) done, 7 already finished" in capsys.readouterr().out
    assert (smoke_run / "ldmiss" / "rate0.50_seed0" / "metrics.json").stat().st_mtime_ns == before
    assert not stale.exists()


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused_unless_forced(smoke_run, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(smoke_run, root)
    metrics = root / "mean" / "rate0.50_seed0" / "metrics.json"
    doc = json.loads(metrics.read_text())
    assert doc["settings"]["draws"] == 2 and doc["settings_hash"] == store.settings_hash(doc["settings"])
    before = metrics.read_bytes()
    args = ["sweep", "--preset", "smoke", "--out", str(root), "--quiet", "--methods", "mean", "vae"]
    assert main(args + ["--set", "draws=3", "--set", "overrides.vae.vae.map_steps=7"]) == 2
    err = capsys.readouterr().err
    assert "2 finished run(s)" in err and "mean/rate0.50_seed0: draws: 2 → 3" in err
    assert "config.vae.map_steps: 5 → 7" in err and "--force" in err
    assert metrics.read_bytes() == before  # nothing ran
    # a run stored before settings were recorded is compared through the fields it always kept
    del doc["settings"], doc["settings_hash"]
    metrics.write_text(json.dumps(doc))
    assert main(args[:-1]) == 0 and "0 run(s) done, 1 already finished" in capsys.readouterr().out
    assert main(args[:-1] + ["--set", "draws=3", "--force"]) == 0
    assert "1 run(s) done, 0 already finished" in capsys.readouterr().out
    assert json.loads(metrics.read_text())["settings"]["draws"] == 3


@pytest.mark.slow
def test_a_forced_rerun_with_another_sampler_reuses_the_fit(smoke_run, tmp_path, capsys):
    """Sampler and conditioner options do not reach the fit (Method.FIT_INDEPENDENT): a rerun that
    changes only them re-samples and re-imputes with the cached fit, and stores the new config;
    a training option still means a new fit."""
    root = tmp_path / "copy"
    shutil.copytree(smoke_run, root)
    run = root / "ldmiss" / "rate0.50_seed0"
    old = json.loads((run / "metrics.json").read_text())
    steps = old["config"]["prior"]["sampler"]["steps"]
    args = ["sweep", "--preset", "smoke", "--out", str(root), "--quiet", "--methods", "ldmiss", "--force"]
    assert main(args + ["--set", f"overrides.ldmiss.prior.sampler.steps={steps + 2}"]) == 0
    new = json.loads((run / "metrics.json").read_text())
    assert new["timings"].get("fit_reused") and new["timings"]["fit_seconds"] == old["timings"]["fit_seconds"]
    assert new["config"]["prior"]["sampler"]["steps"] == steps + 2
    saved = json.loads((run / "model" / "config.json").read_text())
    assert saved["config"]["prior"]["sampler"]["steps"] == steps + 2
    assert new["metrics"]["sample"]["fid"] != old["metrics"]["sample"]["fid"]  # it sampled with the new steps
    train_steps = old["config"]["prior"]["train"]["steps"]
    assert main(args + ["--set", f"overrides.ldmiss.prior.train.steps={train_steps + 1}"]) == 0
    assert not json.loads((run / "metrics.json").read_text())["timings"].get("fit_reused")


@pytest.mark.slow
def test_report_tables_and_figures(smoke_run, capsys):
    assert main(["report", str(smoke_run)]) == 0
    out = capsys.readouterr().out
    assert "MSE on missing pixels" in out and "preset `smoke`" in out and "N = 64" in out
    for floor in ("_ldmiss · prior target_", "_ldmiss · decoder floor_", "_vae · decoder floor_",
                  "_real test images (metric floor)_", "Prior gap", "Memorisation"):
        assert floor in out, floor
    for name in ("runs.csv", "report.md", "fig1_sample_quality.png", "fig2_samples.png", "fig3_imputation.png",
                 "fig4_imputations_rate0.50.png", "fig5_vs_poster.png"):
        assert (smoke_run / name).is_file(), name
    import csv as csvlib
    rows = list(csvlib.DictReader((smoke_run / "runs.csv").read_text().splitlines()))
    assert len(rows) == 9  # ldmiss, ddpm×2, diffputer, mean, vae×2, biharmonic, neighbours
    for col in ("sample_fid", "impute_mse", "floor_fid", "floor_is", "floor_mse", "target_fid", "target_is",
                "impute_mse_mean", "impute_coverage90", "impute_crps", "impute_nfe"):
        assert col in rows[0], col
    assert "Coverage of the true missing pixels" in out and "CRPS" in out
    assert all(0 <= float(r["impute_coverage90"]) <= 1 and float(r["impute_crps"]) > 0 for r in rows)
    ldm = next(r for r in rows if r["method"] == "ldmiss")
    assert all(ldm[c] != "" for c in ("floor_fid", "floor_mse", "target_fid", "prior_gap", "memorization_ratio"))
    assert float(ldm["impute_nfe"]) == 5  # the smoke sampler's 5 guided steps
    assert float(ldm["prior_gap"]) == pytest.approx(float(ldm["sample_fid"]) / float(ldm["target_fid"]), rel=1e-6)
    assert -1 <= float(ldm["floor_ssim"]) <= 1 and float(ldm["floor_psnr"]) > 0  # SSIM of a 20-step VAE may be ≤ 0
    mean_row = next(r for r in rows if r["method"] == "mean")
    assert mean_row["floor_fid"] == "" and mean_row["metric_floor_fid"] != ""


@pytest.mark.slow
def test_the_shared_vae_is_trained_once_and_its_cost_named(smoke_run):
    """ldmiss and vae train the same β-VAE (their configs differ only in vae's inference-only
    decoder-inversion steps): the second run takes it from the cache, and says how long its
    training took, so fit_seconds + fit_shared_seconds is each fit's whole cost."""
    runs = {r["method"]: r for r in store.load_runs(smoke_run)}
    shared = {m: runs[m]["timings"].get("fit_shared_seconds") for m in ("ldmiss", "vae")}
    assert sum(v is not None for v in shared.values()) == 1, shared
    taker = next(m for m, v in shared.items() if v is not None)
    giver = "vae" if taker == "ldmiss" else "ldmiss"
    meta = {m: json.loads((smoke_run / m / "rate0.50_seed0" / "model" / "config.json").read_text())["meta"]["vae_fit"]
            for m in ("ldmiss", "vae")}
    assert meta[taker]["cached"] and not meta[giver]["cached"]
    assert shared[taker] == pytest.approx(meta[giver]["seconds"])
    assert "fit_shared_seconds" not in runs["ddpm"]["timings"]


def test_staging_is_atomic(tmp_path):
    final = tmp_path / "m" / "run"
    with pytest.raises(RuntimeError):
        with store.staging(final) as tmp:
            (tmp / "x").write_text("partial")
            raise RuntimeError("killed")
    assert not final.exists() and not list((tmp_path / "m").iterdir())


def test_train_sample_impute_commands(tmp_path, small_batch, capsys):
    model = tmp_path / "model"
    assert main(["train", "--method", "ldmiss", "--preset", "smoke", "--rate", "0.5", "--train-size", "256",
                 "--out", str(model), "--quiet", "--set", "prior.train.steps=10"]) == 0
    assert json.loads((model / "config.json").read_text())["config"]["prior"]["train"]["steps"] == 10
    assert main(["sample", str(model), "-n", "5", "--out", str(tmp_path / "s.npy"), "--png", str(tmp_path / "s.png"),
                 "--quiet"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 1, 28, 28) and (tmp_path / "s.png").is_file()
    x, m = small_batch
    xin = np.where(m.numpy()[:4] > 0, x.numpy()[:4], np.nan)[:, 0]  # N×H×W with NaN = missing
    np.save(tmp_path / "x.npy", xin)
    assert main(["impute", str(model), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "i.npz"),
                 "--draws", "2", "--png", str(tmp_path / "i.png"), "--quiet"]) == 0
    res = np.load(tmp_path / "i.npz")
    assert res["imputed"].shape == (4, 1, 28, 28) and res["std"].shape == (4, 1, 28, 28)
    assert not np.isnan(res["imputed"]).any()


def test_cli_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "missing-model"), "--out", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "does not exist" in err and "Traceback" not in err
    np.save(tmp_path / "bad.npy", np.full((2, 28, 28), 3.0))
    (tmp_path / "m").mkdir()
    assert main(["impute", str(tmp_path / "m"), "--input", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "o.npz")]) == 2
    assert "config.json is missing" in capsys.readouterr().err
    assert main(["sweep", "--preset", "nonexistent"]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_an_internal_error_is_a_traceback_and_says_it_is_a_bug(tmp_path, capsys, monkeypatch):
    """A torch shape error (or any exception that is not a ``UserError``) is not the user's mistake:
    the CLI shows the traceback, says it is a bug and exits 1, where a user error is one line and 2."""
    def broken(*args, **kwargs):
        return torch.zeros(2, 3) @ torch.zeros(2, 3)  # RuntimeError: shapes cannot be multiplied

    monkeypatch.setattr("ldmiss.experiments.build_report", broken)
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err and "this is a bug in ldmiss" in err
    monkeypatch.undo()
    assert main(["report", str(tmp_path)]) == 2  # the real report of an empty folder: the user's mistake
    err = capsys.readouterr().err
    assert err.startswith("error: no finished runs") and err.count("\n") == 1


def test_every_user_error_class_is_a_user_error():
    """The exceptions a user's input raises all derive from ``UserError`` (the CLI's exit 2) and
    from the builtin a Python caller would catch."""
    from ldmiss.config import ConfigError
    from ldmiss.data import ChecksumError, DatasetError, DataUnavailable
    from ldmiss.errors import UserError
    from ldmiss.inputs import InputError
    from ldmiss.methods import ArtifactError, NotFittedError
    for cls, builtin in ((ConfigError, ValueError), (InputError, ValueError), (DatasetError, ValueError),
                         (ChecksumError, ValueError), (DataUnavailable, RuntimeError), (ArtifactError, RuntimeError),
                         (NotFittedError, RuntimeError)):
        assert issubclass(cls, UserError) and issubclass(cls, builtin), cls


def test_presets_load_and_set_overrides():
    from ldmiss.experiments.config import list_presets
    assert {"smoke", "quick", "cpu", "paper", "fashion-quick", "mechanisms"} <= set(list_presets())
    for name in list_presets():  # each one validates (datasets, mechanisms, conditions, method tables)
        cfg = load_preset(name)
        assert cfg.name == name and cfg.test_rate == 0.5
    assert load_preset("fashion-quick").dataset == "fashion-mnist"
    tags = [t for t, _ in load_preset("mechanisms").tagged_groups()]
    assert tags[0] == "" and len(set(tags)) == len(tags) == 10


def test_the_autoencoder_table_is_every_vae_trainers_and_a_method_table_overrides_it():
    """The preset's [autoencoder] table is the β-VAE config of ldmiss and vae alike (so the sweep's
    fit cache shares it), a method's own ``vae`` table overrides it key by key, and it reaches no
    other method."""
    from ldmiss.experiments.config import experiment_from_dict
    cfg = experiment_from_dict({"name": "x", "autoencoder": {"width": 8, "encoder_drop": 0.25,
                                                             "train": {"steps": 20, "batch_size": 64}},
                                "overrides": {"vae": {"vae": {"map_steps": 5, "train": {"steps": 30}}}}})
    built = {m: get_method_class(m).build_config(None, **cfg.overrides_for(m)) for m in ("ldmiss", "vae")}
    assert built["ldmiss"].vae.width == built["vae"].vae.width == 8
    assert built["ldmiss"].vae.encoder_drop == built["vae"].vae.encoder_drop == 0.25
    assert (built["ldmiss"].vae.train.steps, built["vae"].vae.train.steps) == (20, 30)
    assert built["vae"].vae.train.batch_size == 64 and built["vae"].vae.map_steps == 5
    assert "vae" not in cfg.overrides_for("ddpm") and cfg.overrides["vae"]["vae"] == {"map_steps": 5, "train": {"steps": 30}}
    cpu = load_preset("cpu")  # the grid's two β-VAEs are one: the same training settings
    assert to_dict(get_method_class("ldmiss").build_config(None, **cpu.overrides_for("ldmiss")).vae) == \
        to_dict(get_method_class("vae").build_config(None, **cpu.overrides_for("vae")).vae)


def test_a_preset_extends_another_and_states_only_what_differs(tmp_path):
    from ldmiss.config import ConfigError
    quick = load_preset("quick")
    (tmp_path / "v.toml").write_text('extends = "quick"\nname = "v"\nseeds = [3]\n'
                                     '[overrides.ldmiss]\nprior.train = { steps = 7 }\n')
    v = load_preset(str(tmp_path / "v.toml"))
    assert v.seeds == [3] and v.train_size == quick.train_size and v.description == ""
    assert v.overrides["ldmiss"]["prior"]["train"] == {**quick.overrides["ldmiss"]["prior"]["train"], "steps": 7}
    assert v.overrides["ddpm"] == quick.overrides["ddpm"]
    (tmp_path / "a.toml").write_text('extends = "b.toml"\nname = "a"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\nname = "b"\n')
    with pytest.raises(ConfigError, match="extends it back"):
        load_preset(str(tmp_path / "a.toml"))
    assert parse_set(["a.b=3", "c=true", "d=[1, 2]", "e=word"]) == {"a": {"b": 3}, "c": True, "d": [1, 2], "e": "word"}


@pytest.mark.slow
def test_parallel_sweep_and_seed_aggregation(tmp_path):
    """--jobs 2 runs in spawned processes; two seeds aggregate to mean ± sample std."""
    out = tmp_path / "par"
    assert main(["sweep", "--preset", "smoke", "--methods", "mean", "vae", "--seeds", "0", "1", "--jobs", "2",
                 "--out", str(out), "--quiet"]) == 0
    runs = store.load_runs(out)
    assert len(runs) == 4
    from ldmiss.experiments.results import aggregate, rows_from_runs
    rows = rows_from_runs(runs)
    mean, std, n = aggregate(rows, "impute_mse")[("mean", 0.5)]
    vals = [r["impute_mse"] for r in rows if r["method"] == "mean"]
    assert n == 2 and mean == pytest.approx(np.mean(vals)) and std == pytest.approx(np.std(vals, ddof=1))
    assert std > 0  # different seeds → different test images and masks


def test_train_on_user_npz_with_mask(tmp_path, small_batch):
    x, m = small_batch
    np.savez(tmp_path / "mine.npz", x=(x.numpy() * 255).astype(np.uint8), obs_mask=m.numpy())
    assert main(["train", "--method", "mean", "--input", str(tmp_path / "mine.npz"), "--out", str(tmp_path / "mm"),
                 "--quiet"]) == 0
    doc = json.loads((tmp_path / "mm" / "config.json").read_text())
    assert doc["meta"]["train_size"] == 64 and abs(doc["meta"]["train_missing_rate"] - 0.5) < 0.05


def test_fetch_data_cli_reports_bad_checksum(tmp_path, capsys):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
    assert main(["fetch-data", "--data-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "SHA-256" in err and "does not match" in err and "Traceback" not in err


@pytest.mark.slow
def test_two_sweepers_on_one_root_share_the_work(tmp_path):
    """Two sweeps of the same grid started at once on one folder: every run is done exactly once
    and both finish cleanly (the second takes what the first has not claimed)."""
    import subprocess
    import sys
    root = tmp_path / "shared"
    cmd = [sys.executable, "-m", "ldmiss.cli", "sweep", "--preset", "smoke", "--out", str(root), "--device", "cpu",
           "--methods", "mean", "vae", "ldmiss", "--rates", "0.3", "0.5"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    runs = store.load_runs(root)
    assert sorted((r["method"], r["train_rate"]) for r in runs) == sorted(
        (m, r) for m in ("mean", "vae", "ldmiss") for r in (0.3, 0.5))
    done_each = [int(o.rsplit("sweep smoke: ", 1)[1].split(" run(s) done")[0]) for o in outs]
    assert sum(done_each) == 6, outs  # no run done twice, none lost
    assert not list(root.glob("*/*.claim")) and not list(root.glob("*/*.tmp-*"))


def test_stale_claims_and_staging_are_taken_over_live_ones_are_not(tmp_path):
    final = tmp_path / "m" / "rate0.50_seed0"
    final.parent.mkdir()
    claim = final.parent / "rate0.50_seed0.claim"
    claim.write_text(json.dumps({"host": store._HOST, "pid": 2**22 + 12345, "started": 0}))  # a pid that is gone
    assert store.claim(final)
    assert json.loads(claim.read_text())["pid"] == __import__("os").getpid()
    free = final.parent / "rate0.10_seed0"
    assert store.claim(free)  # an unclaimed run is free …
    assert not store.claim(free)  # … and then held, also against this process's second try
    store.release(free)
    other = final.parent / "rate0.30_seed0"
    (final.parent / "rate0.30_seed0.claim").write_text(json.dumps({"host": store._HOST, "pid": 1, "started": 0}))
    assert not store.claim(other)  # pid 1 is alive: its claim stands
    if store.process_start(1) is not None:  # … unless pid 1 is not the process that claimed (a reused pid)
        reused = {"host": store._HOST, "pid": 1, "started": 0, "proc_start": str(int(store.process_start(1)) + 1)}
        (final.parent / "rate0.30_seed0.claim").write_text(json.dumps(reused))
        assert store.claim(other)
        store.release(other)
    store.release(final)
    assert not claim.exists()
    live = final.parent / f"rate0.50_seed0.tmp-{store._HOST}-{__import__('os').getpid()}-abcd"
    dead = final.parent / f"rate0.50_seed0.tmp-{store._HOST}-{2**22 + 12345}-abcd"
    foreign = final.parent / "rate0.50_seed0.tmp-elsewhere-1-abcd"
    for p in (live, dead, foreign):
        p.mkdir()
    assert store.clean_stale(tmp_path) == [dead]
    assert live.exists() and foreign.exists()


@pytest.mark.slow
def test_compare_imputers_writes_a_table_per_budget_and_resumes(smoke_run, tmp_path, capsys):
    model = smoke_run / "ldmiss" / "rate0.50_seed0" / "model"
    args = ["compare-imputers", str(model), "--out", str(tmp_path / "cmp"), "--preset", "smoke", "--nfe", "4", "8",
            "--modes", "guidance", "dps", "smc", "--draws", "2", "-n", "16", "--quiet", "--device", "cpu",
            "--set", "impute.smc.particles=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| guidance | 4 |" in out and "| smc | 8 | 4 |" in out  # smc: 2 particles × 4 steps = 8 NFE
    import csv as csvlib
    rows = list(csvlib.DictReader((tmp_path / "cmp" / "compare.csv").read_text().splitlines()))
    assert len(rows) == 6 and all(float(r["nfe"]) == float(r["nfe_budget"]) for r in rows)
    assert all(0 <= float(r["coverage90"]) <= 1 and float(r["crps"]) > 0 for r in rows)
    assert (tmp_path / "cmp" / "compare.png").is_file()
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cmp" / "points").iterdir()}
    assert main(args) == 0  # resumes: no point recomputed
    assert stamp == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cmp" / "points").iterdir()}
    assert "NFE" not in capsys.readouterr().err


@pytest.mark.slow
def test_impute_command_takes_a_conditioner_and_inference_options(smoke_run, tmp_path, small_batch, capsys):
    x, m = small_batch
    np.save(tmp_path / "x.npy", (x[:4] * m[:4]).numpy())
    np.save(tmp_path / "m.npy", m[:4].numpy())
    model = str(smoke_run / "ldmiss" / "rate0.50_seed0" / "model")
    base = ["impute", model, "--input", str(tmp_path / "x.npy"), "--mask", str(tmp_path / "m.npy"), "--quiet",
            "--device", "cpu"]
    assert main(base + ["--out", str(tmp_path / "a.npy"), "--mode", "daps", "--steps", "2",
                        "--set", "impute.daps.langevin_steps=3"]) == 0
    assert np.load(tmp_path / "a.npy").shape == (4, 1, 28, 28)
    assert main(base + ["--out", str(tmp_path / "b.npy"), "--set", "prior.net.width=3"]) == 2  # would not match the weights
    assert "not an inference option" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "c.npy"), "--mode", "replacement"]) == 2
    assert "unknown imputation mode" in capsys.readouterr().err


def test_user_input_mistakes_are_one_line_errors(tmp_path, small_batch, capsys):
    x, m = small_batch
    np.savez(tmp_path / "keys.npz", images=x[:4].numpy(), obs_mask=m[:4].numpy())
    np.save(tmp_path / "x.npy", x[:4].numpy())
    train = ["train", "--method", "mean", "--out", str(tmp_path / "mm"), "--quiet", "--device", "cpu"]
    cases = [
        (train + ["--input", str(tmp_path / "x.npy"), "--rate", "0.5"], "--rate masks MNIST"),
        (train + ["--train-size", "0"], "--train-size must be ≥ 1"),
        (train + ["--train-size", "-5"], "--train-size must be ≥ 1"),
        (train + ["--input", str(tmp_path / "keys.npz")], "has no array 'x' (found: images, obs_mask)"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, message
    assert main(train + ["--input", str(tmp_path / "keys.npz"), "--input-key", "images"]) == 0
    capsys.readouterr()
    assert main(["impute", str(tmp_path / "mm"), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.txt")]) == 2
    assert "--out must end in .npz" in capsys.readouterr().err and not (tmp_path / "o.txt.npz").exists()
    assert main(["sample", str(tmp_path / "mm"), "--out", str(tmp_path / "s.txt")]) == 2
    assert "--out must end in .npy" in capsys.readouterr().err and not (tmp_path / "s.txt.npy").exists()


def test_sweep_evaluates_the_imputation_modes_a_preset_names(tmp_path, capsys):
    args = ["sweep", "--preset", "smoke", "--out", str(tmp_path / "s"), "--quiet", "--methods", "ldmiss",
            "--device", "cpu", "--set", 'impute_modes.ldmiss=["guidance", "dps"]']
    assert main(args) == 0
    doc = json.loads((tmp_path / "s" / "ldmiss" / "rate0.50_seed0" / "metrics.json").read_text())
    assert set(doc["metrics"]["impute"]) == {"guidance", "dps"} and doc["metrics"]["impute"]["dps"]["nfe"] == 5
    assert main(args[:-1] + ['impute_modes.ldmiss=["replacement"]']) == 2
    assert "impute_modes.ldmiss" in capsys.readouterr().err


@pytest.mark.skipif(not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed and there is no internet")
def test_train_and_impute_on_fashion_mnist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    out = tmp_path / "fm"
    assert main(["train", "--method", "vae", "--preset", "smoke", "--dataset", "fashion-mnist", "--train-size", "128",
                 "--rate", "0.5", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    assert "trained vae on 128 images" in capsys.readouterr().out
    assert (tmp_path / "xdg" / "ldmiss" / "fashion-mnist" / "t10k-images-idx3-ubyte").is_file()
