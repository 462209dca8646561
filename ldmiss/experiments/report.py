"""Report: runs.csv (one row per run × imputation mode), report.md (mean ± std over seeds per
method and training rate), and figures 1–4. Every table and figure states preset, N and seeds."""
from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import store

COLUMNS = ["preset", "method", "train_rate", "seed", "train_size", "n_eval", "n_ref", "sample_fid", "sample_is",
           "impute_mse", "impute_fid", "impute_is", "fit_seconds", "sample_seconds", "impute_seconds"]


def label(method: str, mode: str, modes: int) -> str:
    return method if modes == 1 else f"{method}-{mode}"


def rows_from_runs(runs: list[dict]) -> list[dict]:
    rows = []
    for run in runs:
        met, tim = run["metrics"], run["timings"]
        modes = met.get("impute", {}) or {"": {}}
        for mode, imp in modes.items():
            rows.append({
                "preset": run["preset"], "method": label(run["method"], mode, len(modes)), "base": run["method"],
                "train_rate": run["train_rate"], "seed": run["seed"], "train_size": run.get("train_size"),
                "n_eval": met.get("n_eval"), "n_ref": met.get("n_ref"),
                "sample_fid": met.get("sample", {}).get("fid"), "sample_is": met.get("sample", {}).get("is"),
                "impute_mse": imp.get("mse"), "impute_fid": imp.get("fid"), "impute_is": imp.get("is"),
                "fit_seconds": tim.get("fit_seconds"), "sample_seconds": tim.get("sample_seconds"),
                "impute_seconds": tim.get(f"impute_{mode}_seconds"),
            })
    return rows


SAMPLE_KEYS = ("sample_fid", "sample_is", "sample_seconds", "fit_seconds")


def per_run(rows: list[dict]) -> list[dict]:
    """One row per run, labelled by the method's own name (sample metrics and fit cost do not
    depend on the imputation mode, so they must not be listed once per mode)."""
    seen, out = set(), []
    for r in rows:
        k = (r["base"], r["train_rate"], r["seed"])
        if k not in seen:
            seen.add(k)
            out.append({**r, "method": r["base"]})
    return out


def aggregate(rows: list[dict], key: str) -> dict[tuple[str, float], tuple[float, float, int]]:
    """(method, rate) → (mean, std, n_seeds) of column ``key`` (std = 0 for a single seed)."""
    if key in SAMPLE_KEYS:
        rows = per_run(rows)
    groups: dict = defaultdict(list)
    for r in rows:
        if r[key] is not None:
            groups[(r["method"], r["train_rate"])].append(float(r[key]))
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) for k, v in groups.items()}


def _fmt(cell, digits: int) -> str:
    if cell is None:
        return "—"
    mean, std, n = cell
    return f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def method_order(rows: list[dict]) -> list[str]:
    preferred = ["ldmiss", "ddpm", "ddpm-replacement", "ddpm-guidance", "diffputer", "vae-encoder", "vae-map", "vae", "mean"]
    names = sorted({r["method"] for r in rows}, key=lambda m: (preferred.index(m) if m in preferred else 99, m))
    return names


def markdown_table(rows: list[dict], key: str, digits: int) -> str:
    agg = aggregate(rows, key)
    methods = [m for m in method_order(per_run(rows) + rows) if any(k[0] == m for k in agg)]
    rates = sorted({r["train_rate"] for r in rows})
    lines = ["| method | " + " | ".join(f"r = {r:g}" for r in rates) + " |",
             "|---|" + "---|" * len(rates)]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_fmt(agg.get((m, r)), digits) for r in rates) + " |")
    return "\n".join(lines)


def describe(rows: list[dict], sweep: dict) -> str:
    seeds = sorted({r["seed"] for r in rows})
    n_eval = sorted({r["n_eval"] for r in rows if r["n_eval"]})
    n_ref = sorted({r["n_ref"] for r in rows if r["n_ref"]})
    train_size = sorted({r["train_size"] for r in rows if r["train_size"]})
    return (f"preset `{sweep.get('name', '?')}`, N = {'/'.join(map(str, n_eval))} generated/imputed images against "
            f"{'/'.join(map(str, n_ref))} MNIST test images (FID reference), seeds {seeds}, "
            f"{'/'.join(map(str, train_size))} training images, test missing rate {sweep.get('test_rate', '?')}")


def tables_markdown(rows: list[dict], sweep: dict) -> str:
    head = describe(rows, sweep)
    parts = [f"_{head}; mean ± std over seeds._", "",
             "### Sample quality (unconditional samples)", "", "FID ↓", "", markdown_table(rows, "sample_fid", 2), "",
             "IS ↑", "", markdown_table(rows, "sample_is", 2), "",
             f"### Imputation at a {sweep.get('test_rate', 0.5):g} test missing rate", "",
             "MSE on missing pixels ↓", "", markdown_table(rows, "impute_mse", 4), "",
             "FID of imputed images ↓", "", markdown_table(rows, "impute_fid", 2), "",
             "IS of imputed images ↑", "", markdown_table(rows, "impute_is", 2), "",
             "### Cost (seconds per run)", "", "fit", "", markdown_table(rows, "fit_seconds", 0), "",
             f"sampling {_n_eval_text(rows)} images", "", markdown_table(rows, "sample_seconds", 1), "",
             f"imputing {_n_eval_text(rows)} images", "", markdown_table(rows, "impute_seconds", 1)]
    return "\n".join(parts)


def _n_eval_text(rows) -> str:
    ns = sorted({r["n_eval"] for r in rows if r["n_eval"]})
    return "/".join(map(str, ns)) or "?"


def write_csv(rows: list[dict], path: Path) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None or (isinstance(r[k], float) and math.isnan(r[k])) else r[k]) for k in COLUMNS})
    tmp.replace(path)


def build_report(root: str | Path, figures: bool = True) -> dict:
    """Write runs.csv, report.md and fig*.png under ``root``; return paths and the tables' Markdown."""
    root = Path(root)
    runs = store.load_runs(root)
    if not runs:
        raise FileNotFoundError(f"no finished runs under {root} (expected */*/{store.METRICS_FILE})")
    sweep_path = root / store.SWEEP_FILE
    sweep = json.loads(sweep_path.read_text()) if sweep_path.is_file() else {"name": runs[0]["preset"]}
    rows = rows_from_runs(runs)
    write_csv(rows, root / "runs.csv")
    tables = tables_markdown(rows, sweep)
    out = {"csv": root / "runs.csv", "tables": tables, "figures": []}
    if figures:
        from .figures import make_figures
        out["figures"] = make_figures(root, runs, rows, describe(rows, sweep))
    figs = "\n".join(f"![{p.stem}]({p.name})" for p in out["figures"])
    md = f"# LDMiss report — preset `{sweep.get('name')}`\n\n{tables}\n\n## Figures\n\n{figs}\n"
    (root / "report.md").write_text(md)
    out["markdown"] = root / "report.md"
    return out
