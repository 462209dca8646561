"""Inference-time variants of a fitted model on a preset's test sets (every condition of the preset,
or those named; e.g. `photos`: scattered pixels, 50% MCAR, and holes, 8×8 blocks covering 25%;
`mnar`: MCAR and self-masking at two strengths), scored as the sweep scores a run (MSE, PSNR, SSIM
on the scored pixels, one draw).

The model is a run's saved ``model/`` folder (the sweep keeps it until results are committed), so
every variant imputes with the very network the sweep evaluated; a variant is a set of inference
options (``--set``-style, e.g. ``refine=biharmonic``). One JSON line per (model, condition, variant)
is appended to ``--out`` (default ``bench/<preset>_ablation.jsonl``); ``--table`` prints them.

    python bench/variant_ablation.py results/photos/photos/ldmiss/rate0.50_seed0/model \
        --variants refine=none refine=neighbours refine=biharmonic
    python bench/variant_ablation.py --table
    python bench/variant_ablation.py --preset mnar MODEL --conditions mnar --variants \
        impute.guidance.missingness_weight=0 impute.guidance.missingness_weight=0.02
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ldmiss.config import parse_set
from ldmiss.experiments.config import load_preset
from ldmiss.experiments.protocol import scored_test_data, stream_seed
from ldmiss.methods import load_method
from ldmiss.metrics import missing_mse, missing_psnr, missing_ssim
from ldmiss.missing import apply_mask


def default_out(preset: str) -> Path:
    return Path(__file__).with_name(f"{preset}_ablation.jsonl")


def run(models: list[str], variants: list[str], seed: int, out: Path, conditions: list[str] | None = None,
        preset: str = "photos", rate: float = 0.5) -> None:
    """``rate``: the training rate of the models' runs (the sweep's imputation seed depends on it)."""
    cfg = load_preset(preset)
    for model_dir in models:
        for tag, group in cfg.tagged_groups():
            if conditions and (tag or "mcar") not in conditions:
                continue
            x, m, unscored = scored_test_data(group, seed)
            for variant in variants:
                method = load_method(model_dir, device="cpu")
                method.set_inference_options(parse_set(variant.split()) if variant != "preset" else {})
                t0 = time.perf_counter()
                res = method.impute(apply_mask(x, m), m, seed=stream_seed(seed, "impute", rate), progress=False)
                row = {"model": model_dir, "condition": tag or "mcar", "variant": variant, "n": len(x),
                       "mse": missing_mse(res.first, x, unscored), "psnr": missing_psnr(res.first, x, unscored),
                       "ssim": missing_ssim(res.first, x, unscored), "seconds": time.perf_counter() - t0,
                       "threads": torch.get_num_threads(), "host": platform.node()}
                print(json.dumps(row), flush=True)
                with open(out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")


def table(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    print("| model | condition | variant | MSE | PSNR | SSIM | impute s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {Path(r['model']).parent.parent.name}/{Path(r['model']).parent.name} | {r['condition']} | "
              f"{r['variant']} | {r['mse']:.5f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['seconds']:.0f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help="saved model folders")
    p.add_argument("--variants", nargs="+", default=["preset"], help="inference options, e.g. refine=biharmonic "
                   "(several in one variant: 'refine=neighbours impute.guidance.steps=50'); preset = as saved")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conditions", nargs="+", default=None, help="condition tags to run (mcar, or the block one's tag)")
    p.add_argument("--preset", default="photos")
    p.add_argument("--rate", type=float, default=0.5, help="the models' training missing rate")
    p.add_argument("--out", type=Path, default=None, help="default: bench/<preset>_ablation.jsonl")
    p.add_argument("--table", action="store_true")
    args = p.parse_args()
    out = args.out or default_out(args.preset)
    if args.table:
        table(out)
    else:
        run(args.models, args.variants, args.seed, out, args.conditions, args.preset, args.rate)


if __name__ == "__main__":
    main()
