"""Imputation functions compared on one fitted model at equal cost (``ldmiss compare-imputers``).

Every conditioner the model supports imputes the same test images under the same test mask (the
protocol's, for a preset and seed) at matched budgets of network evaluations per image (NFE): a
conditioner's steps are chosen from its own cost formula so that one draw costs the budget. Each
(conditioner, budget) point records single-draw MSE, the MSE of the mean of D draws, FID and IS of
single draws, the draws' 90%-interval coverage and CRPS on missing pixels, the NFE and backward
passes actually spent, and wall seconds. Points are written one JSON file each, atomically, so a
killed comparison resumes; a point computed with other settings is recomputed.
"""
from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..config import to_dict
from ..diffusion.conditioners import get_conditioner
from ..errors import UsageError
from ..methods import load_method
from ..methods.artifact import read_artifact_config
from ..metrics import inception_score, missing_mse
from ..missing import apply_mask
from .config import load_preset
from .evaluation import imputation_quality
from .protocol import held_out_real, reference_stats, scored_test_data, stream_seed
from .store import write_json

METRICS_VERSION = 2  # 2: coverage widened by half a grey level (metrics/uncertainty.py); older points are recomputed
FIELDS = ["mode", "nfe_budget", "steps", "nfe", "backward_nfe", "mse", "mse_mean", "fid", "is", "coverage90", "crps",
          "seconds", "draws", "n", "quantile_crps", "energy"]


def _settings(method, mode: str, weights_sha256: str, preset: str, seed: int, n: int, draws: int, steps: int) -> dict:
    cfg = method.conditioner_config(mode)
    return {"weights_sha256": weights_sha256, "preset": preset, "seed": seed, "n": n, "draws": draws,
            "mode": mode, "steps": steps, "conditioner": to_dict(cfg), "metrics_version": METRICS_VERSION}


def _first_order_budget(cond, budget: float, method) -> float:
    """The budget a conditioner's first-order cost formula must meet so that, on the prior's own
    sampler (which may evaluate several times per step), one draw costs ``budget``."""
    from ..diffusion.samplers import EVALS_PER_STEP
    evals = EVALS_PER_STEP[method._sampler_config().method]
    return (budget - 1) / evals + 1 if cond.follows_sampler and evals > 1 else budget


def _key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def compare_imputers(model_dir, out, *, preset: str = "cpu", seed: int = 0, budgets=(50, 100, 200), modes=None,
                     draws: int = 5, n: int | None = None, overrides: dict | None = None, device: str = "cpu",
                     progress: bool = True, log=print) -> list[dict]:
    """Run the comparison; return one row per (mode, budget) and write compare.csv/.md/.png under ``out``."""
    out = Path(out)
    (out / "points").mkdir(parents=True, exist_ok=True)
    method = load_method(model_dir, device=device)
    weights_sha256 = read_artifact_config(model_dir)["weights_sha256"]  # read once, not per point
    if overrides:
        method.set_inference_options(overrides)
    if not method.conditionable:
        from ..methods import REGISTRY
        raise UsageError(f"{method.name} has no diffusion prior to condition; compare-imputers needs one of "
                         f"{[n for n, c in REGISTRY.items() if c.conditionable]}")
    sampler = method._sampler_config().method
    runnable = [m for m in method.supported_modes() if get_conditioner(m).works_with(sampler)]
    modes = list(modes or runnable)  # by default every conditioner this model's sampler can drive
    unknown = [m for m in modes if m not in method.supported_modes()]
    if unknown:
        raise UsageError(f"{method.name} does not support {unknown}; choose from {list(method.supported_modes())}")
    blocked = [m for m in modes if m not in runnable]
    if blocked:
        raise UsageError(f"{blocked} cannot run on this model's {sampler!r} sampler (several evaluations per step); "
                         f"choose from {runnable} or --set a first-order sampler")
    cfg = load_preset(preset)
    if len(cfg.groups()) > 1:
        raise UsageError(f"preset {preset!r} has {len(cfg.groups())} conditions; compare-imputers needs a preset with "
                         "one (the dataset and test mask the model is compared on)")
    if n is not None:
        cfg.n_eval = int(n)
    x_test, m_test, unscored = scored_test_data(cfg, seed)
    ref = reference_stats(cfg.dataset, cfg.n_ref, None, cfg.dataset_options)
    floor = ref.fid(held_out_real(cfg, seed).numpy()) if ref is not None else None
    x_obs = apply_mask(x_test, m_test)
    rows = []
    for mode in modes:
        cond, ccfg = get_conditioner(mode), method.conditioner_config(mode)
        for budget in budgets:
            steps = cond.steps_for_nfe(ccfg, _first_order_budget(cond, budget, method))
            settings = _settings(method, mode, weights_sha256, preset, seed, len(x_test), draws, steps)
            path = out / "points" / f"{mode}_nfe{budget}.json"
            if path.is_file():
                doc = json.loads(path.read_text())
                if doc.get("settings_key") == _key(settings):
                    rows.append(doc["row"])
                    continue
            log(f"{mode}: NFE {budget} ({steps} steps) × {draws} draws on {len(x_test)} images …")
            t0 = time.perf_counter()
            result = method.impute(x_obs, m_test, draws=draws, mode=mode, steps=steps,
                                   seed=stream_seed(seed, "impute"), progress=progress)
            seconds = time.perf_counter() - t0
            single, cost = result.first, result.cost
            row = {"mode": mode, "nfe_budget": budget, "steps": steps, "nfe": cost.nfe,
                   "backward_nfe": cost.backward_nfe, "mse": missing_mse(single, x_test, unscored),
                   **imputation_quality(result.draws, result.mean, x_test, unscored),
                   "fid": ref.fid(single) if ref else None,
                   "is": inception_score(single, dataset=ref.dataset)[0] if ref else None, "seconds": seconds / draws,
                   "draws": draws, "n": len(x_test)}
            write_json(path, {"settings": settings, "settings_key": _key(settings), "row": row})
            rows.append(row)
    meta = {"model": str(model_dir), "method": method.name, "preset": preset, "seed": seed, "n": len(x_test),
            "draws": draws, "metric_floor_fid": floor, "test_rate": cfg.test_rate, "overrides": overrides or {}}
    write_json(out / "compare.json", {"meta": meta, "rows": rows})
    write_table(rows, meta, out)
    plot(rows, meta, out / "compare.png")
    return rows


def write_table(rows: list[dict], meta: dict, out: Path) -> None:
    with open(out / "compare.csv.tmp", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows({k: r.get(k) for k in FIELDS} for r in rows)
    (out / "compare.csv.tmp").replace(out / "compare.csv")
    (out / "compare.md").write_text(markdown(rows, meta))


def markdown(rows: list[dict], meta: dict) -> str:
    def f(v, d):
        return "—" if v is None else f"{v:.{d}f}"
    head = (f"_{meta['method']} at {meta['model']}; {meta['n']} test images of preset `{meta['preset']}`, seed "
            f"{meta['seed']}, test missing rate {meta['test_rate']:g}; {meta['draws']} draws per image; FID of single "
            f"draws (metric floor at this N: {f(meta['metric_floor_fid'], 2)}); seconds per draw of all {meta['n']} "
            f"images on this machine._")
    lines = [head, "", "| conditioner | NFE | steps | MSE (1 draw) | MSE (mean of draws) | FID | IS | coverage 90% | CRPS "
             "| quantile CRPS | energy | backward passes | s / draw |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["nfe_budget"], r["mse"])):
        lines.append(f"| {r['mode']} | {f(r['nfe'], 0)} | {r['steps']} | {f(r['mse'], 4)} | {f(r.get('mse_mean'), 4)} | "
                     f"{f(r['fid'], 2)} | {f(r['is'], 2)} | {f(r.get('coverage90'), 3)} | {f(r.get('crps'), 4)} | "
                     f"{f(r.get('quantile_crps'), 4)} | {f(r.get('energy'), 3)} | {f(r['backward_nfe'], 0)} | "
                     f"{f(r['seconds'], 1)} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], meta: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("mse", "MSE on missing pixels (solid: 1 draw, dashed: mean of draws)"), ("fid", "FID of single draws"),
              ("coverage90", "coverage of the 90% interval"), ("seconds", "seconds per draw")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.6))
    for mode in sorted({r["mode"] for r in rows}):
        pts = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["nfe"])
        nfe = [r["nfe"] for r in pts]
        for ax, (key, title) in zip(axes, panels):
            (line,) = ax.plot(nfe, [r.get(key) if r.get(key) is not None else np.nan for r in pts], marker="o", label=mode)
            if key == "mse":
                ax.plot(nfe, [r.get("mse_mean", np.nan) for r in pts], ls="--", color=line.get_color())
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("network evaluations per image")
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
    ticks = sorted({r["nfe_budget"] for r in rows})
    for ax in axes:
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    axes[2].axhline(0.9, color="k", lw=0.8, ls=":")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{meta['method']}: imputation functions at equal NFE ({meta['n']} images, preset {meta['preset']}, "
                 f"seed {meta['seed']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
