"""The results model: stored runs → rows (one per run × imputation mode) → aggregates over seeds.

Both the report (tables, runs.csv) and the figures read runs through this module and nothing else,
so neither depends on the other.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

COLUMNS = ["preset", "method", "train_rate", "seed", "train_size", "n_eval", "n_ref", "sample_fid", "sample_is",
           "impute_mse", "impute_fid", "impute_is", "fit_seconds", "sample_seconds", "impute_seconds",
           "floor_fid", "floor_is", "floor_mse", "target_fid", "target_is", "prior_gap", "metric_floor_fid",
           "metric_floor_is", "memorization_ratio", "impute_mse_mean", "draws", "impute_coverage90", "impute_crps",
           "impute_nfe", "impute_psnr", "impute_ssim", "group", "dataset", "train_mechanism", "test_mechanism",
           "floor_psnr", "floor_ssim", "fit_shared_seconds", "impute_coverage50", "impute_coverage50_cal",
           "impute_coverage90_cal", "impute_width90", "impute_width90_cal", "impute_quantile_crps", "impute_energy"]
# (new columns go last: readers by position keep working)

# Columns that belong to the run, not to an imputation mode: aggregated once per run.
RUN_KEYS = ("sample_fid", "sample_is", "sample_seconds", "fit_seconds", "fit_shared_seconds", "floor_fid", "floor_is",
            "floor_mse", "floor_psnr", "floor_ssim",
            "target_fid", "target_is", "prior_gap", "metric_floor_fid", "metric_floor_is", "memorization_ratio")


def label(method: str, mode: str, modes: int) -> str:
    return method if modes == 1 else f"{method}-{mode}"


def condition(run: dict) -> dict:
    """The run's dataset, masks and test rate (config.CONDITION_FIELDS) from its stored settings; a
    field a run did not store (runs made before conditions existed) has the experiment's default."""
    from .config import CONDITION_FIELDS, ExperimentConfig
    st, default = run.get("settings", {}), ExperimentConfig(name="default")
    return {k: st.get(k, run.get(k, getattr(default, k))) for k in CONDITION_FIELDS}


def _mechanism_name(mech: str, params: dict | None) -> str:
    args = ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
    return mech.upper() if mech in ("mcar", "mar", "mnar") and not args else f"{mech} ({args})" if args else mech


def rows_from_runs(runs: list[dict]) -> list[dict]:
    rows = []
    for run in runs:
        met, tim = run["metrics"], run["timings"]
        cond = condition(run)
        test_mech = cond["test_mechanism"] or cond["mechanism"]
        test_params = cond["test_mechanism_params"] if cond["test_mechanism"] else cond["mechanism_params"]
        modes = met.get("impute", {}) or {"": {}}
        rec, tgt, flo = met.get("decoder_floor", {}), met.get("prior_target", {}), met.get("metric_floor", {})
        for mode, imp in modes.items():
            rows.append({
                "preset": run["preset"], "method": label(run["method"], mode, len(modes)), "base": run["method"],
                "train_rate": run["train_rate"], "seed": run["seed"], "train_size": run.get("train_size"),
                "n_eval": met.get("n_eval"), "n_ref": met.get("n_ref"),
                "sample_fid": met.get("sample", {}).get("fid"), "sample_is": met.get("sample", {}).get("is"),
                "impute_mse": imp.get("mse"), "impute_fid": imp.get("fid"), "impute_is": imp.get("is"),
                "impute_mse_mean": imp.get("mse_mean"), "draws": imp.get("draws", run.get("draws")),
                "impute_coverage90": imp.get("coverage90"), "impute_crps": imp.get("crps"), "impute_nfe": imp.get("nfe"),
                "fit_seconds": tim.get("fit_seconds"), "fit_shared_seconds": tim.get("fit_shared_seconds"),
                "sample_seconds": tim.get("sample_seconds"),
                "impute_seconds": tim.get(f"impute_{mode}_seconds"),
                "floor_fid": rec.get("fid"), "floor_is": rec.get("is"), "floor_mse": rec.get("mse"),
                "floor_psnr": rec.get("psnr"), "floor_ssim": rec.get("ssim"),
                "target_fid": tgt.get("fid"), "target_is": tgt.get("is"), "prior_gap": met.get("prior_gap"),
                "metric_floor_fid": flo.get("fid"), "metric_floor_is": flo.get("is"),
                "memorization_ratio": met.get("memorization", {}).get("ratio"),
                "impute_psnr": imp.get("psnr"), "impute_ssim": imp.get("ssim"),
                "impute_coverage50": imp.get("coverage50"), "impute_coverage50_cal": imp.get("coverage50_cal"),
                "impute_coverage90_cal": imp.get("coverage90_cal"), "impute_width90": imp.get("width90"),
                "impute_width90_cal": imp.get("width90_cal"), "impute_quantile_crps": imp.get("quantile_crps"),
                "impute_energy": imp.get("energy"),
                "group": run.get("group", ""), "dataset": cond["dataset"],
                "train_mechanism": _mechanism_name(cond["mechanism"], cond["mechanism_params"]),
                "test_mechanism": _mechanism_name(test_mech, test_params),
            })
    return rows


def per_run(rows: list[dict]) -> list[dict]:
    """One row per run, labelled by the method's own name (sample metrics, floors and fit cost do
    not depend on the imputation mode, so they must not be listed once per mode)."""
    seen, out = set(), []
    for r in rows:
        k = (r.get("group", ""), r["base"], r["train_rate"], r["seed"])
        if k not in seen:
            seen.add(k)
            out.append({**r, "method": r["base"]})
    return out


def aggregate(rows: list[dict], key: str) -> dict[tuple[str, float], tuple[float, float, int]]:
    """(method, rate) → (mean, std, n_seeds) of column ``key`` (std = 0 for a single seed)."""
    if key in RUN_KEYS:
        rows = per_run(rows)
    groups: dict = defaultdict(list)
    for r in rows:
        if r.get(key) is not None:
            groups[(r["method"], r["train_rate"])].append(float(r[key]))
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) for k, v in groups.items()}


def method_order(rows: list[dict]) -> list[str]:
    preferred = ["ldmiss", "ldmiss-em", "diem-pigdm", "diem-replacement", "ambient", "ambient-replacement",
                 "ambient-guidance", "ddpm", "ddpm-replacement", "ddpm-guidance",
                 "diffputer", "vae-encoder", "vae-map", "vae", "biharmonic", "neighbours", "mean"]
    return sorted({r["method"] for r in rows}, key=lambda m: (preferred.index(m) if m in preferred else 99, m))


def dataset_title(name: str) -> str:
    from ..data.datasets import REGISTRY
    return REGISTRY[name].title if name in REGISTRY else f"`{name}`"


def describe(rows: list[dict], sweep: dict) -> str:
    """One sentence of what the rows were measured on (``sweep``: the sweep's or a condition's fields)."""
    seeds = sorted({r["seed"] for r in rows})
    n_eval = sorted({r["n_eval"] for r in rows if r["n_eval"]})
    n_ref = sorted({r["n_ref"] for r in rows if r["n_ref"]})
    train_size = sorted({r["train_size"] for r in rows if r["train_size"]})
    title = dataset_title(sweep.get("dataset", "mnist"))
    reference = (f"against {'/'.join(map(str, n_ref))} {title} test images (FID reference)" if n_ref
                 else f"(no FID/IS: {title} has no metric network; scored on pixels)")
    return (f"preset `{sweep.get('name', '?')}`, {title}, N = {'/'.join(map(str, n_eval))} generated/imputed images "
            f"{reference}, seeds {seeds}, {'/'.join(map(str, train_size))} training images, test missing rate "
            f"{sweep.get('test_rate', '?')}, {masking(sweep)}")


def masking(sweep: dict) -> str:
    """How the masks were drawn, e.g. "MCAR masks" or "training masks block (size=7), test masks MCAR"."""
    train = _mechanism_name(sweep.get("mechanism", "mcar"), sweep.get("mechanism_params"))
    if not sweep.get("test_mechanism"):
        return f"{train} masks (training and test)"
    test = _mechanism_name(sweep["test_mechanism"], sweep.get("test_mechanism_params"))
    return f"{train} masks (training and test)" if test == train else f"training masks {train}, test masks {test}"
