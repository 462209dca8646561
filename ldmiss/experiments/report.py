"""Report: runs.csv (one row per run × imputation mode), report.md (mean ± std over seeds per
method and training rate, each method beside its floors), and figures 1–4. Every table and figure
states preset, N and seeds."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from ..errors import NoResults
from . import store
from .results import COLUMNS, aggregate, condition, dataset_title, describe, masking, method_order, per_run, rows_from_runs


def _fmt(cell, digits: int) -> str:
    if cell is None:
        return "—"
    mean, std, n = cell
    return f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def floor_rows(rows: list[dict], key: str, name: str, bases: set[str] | None = None) -> list[dict]:
    """Pseudo-method rows carrying a floor column (e.g. ``target_fid``) under ``key`` (e.g.
    ``sample_fid``), so a table can print the floor beside the method's own number. ``bases`` None:
    one row per (rate, seed) whatever the method (the metric floor is the same for all)."""
    out, seen = [], set()
    for r in per_run(rows):
        if r.get(name) is None or (bases is not None and r["base"] not in bases):
            continue
        who = "real test images (metric floor)" if bases is None else f"{r['base']} · {FLOOR_LABELS[name]}"
        if (who, r["train_rate"], r["seed"]) in seen:
            continue
        seen.add((who, r["train_rate"], r["seed"]))
        out.append({**r, "method": who, "base": who, key: r[name]})
    return out


FLOOR_LABELS = {"target_fid": "prior target", "target_is": "prior target", "floor_fid": "decoder floor",
                "floor_is": "decoder floor", "floor_mse": "decoder floor", "floor_psnr": "decoder floor",
                "floor_ssim": "decoder floor"}


def markdown_table(rows: list[dict], key: str, digits: int, floors: tuple[tuple[str, bool], ...] = ()) -> str:
    """Methods × rates for column ``key``; each ``(floor_column, per_method)`` in ``floors`` adds the
    floor's rows under the methods (per autoencoder method, or once for the metric floor)."""
    agg = aggregate(rows, key)
    methods = [m for m in method_order(per_run(rows) + rows) if any(k[0] == m for k in agg)]
    extra = []
    for name, per_method in floors:
        bases = {r["base"] for r in rows if r.get(key) is not None} if per_method else None
        extra += floor_rows(rows, key, name, bases)
    agg.update(aggregate(extra, key))
    extra_names = list(dict.fromkeys(r["method"] for r in extra))
    rates = sorted({r["train_rate"] for r in rows})
    lines = ["| method | " + " | ".join(f"r = {r:g}" for r in rates) + " |",
             "|---|" + "---|" * len(rates)]
    for m in methods + extra_names:
        name = f"_{m}_" if m in extra_names else m
        lines.append(f"| {name} | " + " | ".join(_fmt(agg.get((m, r)), digits) for r in rates) + " |")
    return "\n".join(lines)


def _has(rows: list[dict], key: str) -> bool:
    return any(r.get(key) is not None for r in rows)


def tables_markdown(rows: list[dict], sweep: dict) -> str:
    """The report's tables for one condition; a table whose metric no run has (FID and IS on a
    dataset without a metric network, coverage with one draw) is left out, and the lack is said."""
    head = describe(rows, sweep)

    def t(title, key, digits, floors=()):
        return [title, "", markdown_table(rows, key, digits, floors), ""] if _has(rows, key) else []
    scored = _has(rows, "impute_fid") or _has(rows, "sample_fid")
    parts = [f"_{head}; mean ± std over seeds. Rows in italics are floors: what a perfect model would score "
             "(real test images outside the evaluated set), what the latent prior is trained to match (its "
             "target: decoded encodings of the incomplete training images), and the best this decoder can do "
             "(its decoder floor: the missing pixels filled by the latent that best fits their true values, a "
             "bound on any imputation that decodes a latent)._", ""]
    if not scored:
        parts += [f"FID and IS are unavailable: {dataset_title(sweep.get('dataset', 'mnist'))} has no metric network "
                  "(metrics/features.py), so samples are not scored and imputations are scored on their pixels "
                  "only (MSE, PSNR, SSIM).", ""]
    if _has(rows, "sample_fid") or _has(rows, "memorization_ratio"):
        parts += ["### Sample quality (unconditional samples)", "",
                  *t("FID ↓", "sample_fid", 2, (("target_fid", True), ("metric_floor_fid", False))),
                  *t("IS ↑", "sample_is", 2, (("target_is", True), ("metric_floor_is", False))),
                  *t("Prior gap = sample FID ÷ prior-target FID (1 = the prior matches its training distribution) ↓",
                     "prior_gap", 2),
                  *t("Memorisation check: median nearest-neighbour distance of the samples to training images ÷ to "
                     "as many held-out test images, in the metric network's feature space (≈ 1: no copying; → 0: "
                     "copies)", "memorization_ratio", 3)]
    multi = any((r.get("draws") or 1) > 1 for r in rows)
    parts += [f"### Imputation at a {sweep.get('test_rate', 0.5):g} test missing rate", "",
              *t("MSE on missing pixels, one draw ↓", "impute_mse", 4, (("floor_mse", True),)),
              *(t(f"MSE on missing pixels, mean of {_draws_text(rows)} draws ↓", "impute_mse_mean", 4) if multi else []),
              *t("PSNR on missing pixels (dB, per image), one draw ↑", "impute_psnr", 2, (("floor_psnr", True),)),
              *t("SSIM on missing pixels, one draw ↑", "impute_ssim", 3, (("floor_ssim", True),)),
              *t("Coverage of the true missing pixels by the draws' central 90% interval (nominal 0.90; "
                 "few draws make the interval narrow) ↑ to 0.90", "impute_coverage90", 3),
              *t("Coverage of the 90% interval after split-conformal calibration on training images "
                 "(ldmiss/calibration.py; nominal 0.90)", "impute_coverage90_cal", 3),
              *t("Coverage of the 50% interval after calibration (nominal 0.50)", "impute_coverage50_cal", 3),
              *t("Mean width of the draws' own 90% interval", "impute_width90", 4),
              *t("Mean width of the calibrated 90% interval", "impute_width90_cal", 4),
              *t("CRPS on missing pixels ↓", "impute_crps", 4),
              *t("Normalised quantile CRPS (CSDI's: pinball loss at α = 0.05…0.95 over Σ|y|) ↓",
                 "impute_quantile_crps", 4),
              *t("Energy score per image (the multivariate CRPS of each image's missing pixels) ↓", "impute_energy", 3),
              *t("FID of imputed images (one draw) ↓", "impute_fid", 2,
                 (("floor_fid", True), ("metric_floor_fid", False))),
              *t("IS of imputed images (one draw) ↑", "impute_is", 2, (("floor_is", True), ("metric_floor_is", False))),
              "### Cost (seconds per run)", "", *t("fit", "fit_seconds", 0),
              *t("training of components taken from another run's fit (the β-VAE that ldmiss and vae share; "
                 "not in the fit time above — together they are the fit's whole cost)", "fit_shared_seconds", 0),
              *t(f"sampling {_n_eval_text(rows)} images", "sample_seconds", 1),
              *t(f"imputing {_n_eval_text(rows)} images ({_draws_text(rows)} draws)", "impute_seconds", 1)]
    while parts and parts[-1] == "":
        parts.pop()
    return "\n".join(parts)


def _draws_text(rows) -> str:
    ds = sorted({r["draws"] for r in rows if r.get("draws")})
    return "/".join(map(str, ds)) or "?"


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
    """Write runs.csv, report.md and fig*.png under ``root``; return paths and the tables' Markdown.
    A root holding several conditions (datasets, masks) gets one section of tables per condition,
    and each condition's figures in its own folder."""
    root = Path(root)
    runs = store.load_runs(root)
    if not runs:
        raise NoResults(f"no finished runs under {root} (expected */*/{store.METRICS_FILE})")
    sweep_path = root / store.SWEEP_FILE
    sweep = json.loads(sweep_path.read_text()) if sweep_path.is_file() else {"name": runs[0]["preset"]}
    rows = rows_from_runs(runs)
    write_csv(rows, root / "runs.csv")
    groups = sorted({r.get("group", "") for r in runs})
    sections, made = [], []
    for tag in groups:
        g_runs = [r for r in runs if r.get("group", "") == tag]
        g_rows = [r for r in rows if r["group"] == tag]
        info = {**sweep, **condition(g_runs[0])}
        tables = tables_markdown(g_rows, info)
        sections.append(tables if len(groups) == 1 else f"## {_condition_title(info)}\n\n{tables}")
        if figures:
            from .figures import make_figures
            where = root / tag if tag else root
            made += make_figures(where, g_runs, g_rows, describe(g_rows, info), poster=_is_poster_protocol(info))
    tables = "\n\n".join(sections)
    out = {"csv": root / "runs.csv", "tables": tables, "figures": made}
    # figures not redrawn this time (a committed folder keeps no example images) stay listed
    kept = sorted(set(made) | set(root.glob("fig*.png")) | set(root.glob("*/fig*.png")),
                  key=lambda p: (len(p.relative_to(root).parts), str(p)))
    figs = "\n".join(f"![{p.stem}]({p.relative_to(root).as_posix()})" for p in kept)
    md = f"# LDMiss report — preset `{sweep.get('name')}`\n\n{tables}\n\n## Figures\n\n{figs}\n"
    (root / "report.md").write_text(md)
    out["markdown"] = root / "report.md"
    return out


def _condition_title(info: dict) -> str:
    return f"{dataset_title(info.get('dataset', 'mnist'))}, {masking(info)}"


def _is_poster_protocol(info: dict) -> bool:
    """MNIST under MCAR (the condition without a folder of its own): the only one the poster's
    figures can be laid over."""
    return store.condition_tag(info) == ""
