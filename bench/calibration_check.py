"""Are a fitted model's intervals honest? Coverage and width of the 50% and 90% per-pixel intervals of
D draws, raw and after split-conformal calibration on the model's own incomplete training images
(ldmiss/calibration.py), with the per-pixel CRPS, CSDI's quantile CRPS and the energy score — per
imputation mode, on the sweep's test set of a preset (its test mask, its ``n_eval`` images or ``-n``).

The training images are the ones the sweep trained that model on (same subset and mask: the run's
rate and seed), so the calibration uses nothing the user would not have. One JSON line per
(model, mode) is appended to ``--out``; ``--table`` prints them.

    python bench/calibration_check.py results/cpu_models/ldmiss/rate0.50_seed0/model --preset cpu \\
        --rate 0.5 --seed 0 --modes guidance daps --draws 5
    python bench/calibration_check.py --table
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

OUT = Path(__file__).with_name("calibration_check.jsonl")


def run(model_dir: str, preset: str, rate: float, seed: int, modes: list[str], draws: int, n: int | None,
        images: int, out: Path) -> None:
    from ldmiss.experiments.config import load_preset
    from ldmiss.experiments.evaluation import imputation_quality
    from ldmiss.experiments.protocol import scored_test_data, stream_seed, training_data
    from ldmiss.methods import load_method
    from ldmiss.metrics import missing_mse
    from ldmiss.metrics.uncertainty import interval_coverage
    from ldmiss.missing import apply_mask
    cfg = load_preset(preset)
    if n:
        cfg.n_eval = n
    x_train, m_train = training_data(cfg, rate, seed)
    x, m, unscored = scored_test_data(cfg, seed)
    for mode in modes:
        model = load_method(model_dir, device="cpu")
        t0 = time.perf_counter()
        model.calibrate(apply_mask(x_train, m_train), m_train, images=images, draws=draws, mode=mode,
                        seed=stream_seed(seed, "impute", rate) + 1)
        t1 = time.perf_counter()
        res = model.impute(apply_mask(x, m), m, draws=draws, mode=mode, seed=stream_seed(seed, "impute", rate),
                           progress=False)
        t2 = time.perf_counter()
        row = {"model": model_dir, "preset": preset, "rate": rate, "seed": seed, "mode": mode, "draws": draws,
               "n": len(x), "calibration_images": images, "mse": missing_mse(res.first, x, unscored),
               **imputation_quality(res.draws, res.mean, x, unscored),
               "calibrate_seconds": t1 - t0, "impute_seconds": t2 - t1, "threads": torch.get_num_threads(),
               "host": platform.node()}
        for level in (0.5, 0.9):
            tag = f"{round(100 * level)}"
            for kind, calibrated in (("", False), ("_cal", True)):
                lo, hi = res.interval(level, calibrated=calibrated)
                row[f"coverage{tag}{kind}"], row[f"width{tag}{kind}"] = interval_coverage(lo, hi, x, unscored)
        print(json.dumps(row), flush=True)
        with open(out, "a") as fh:
            fh.write(json.dumps(row) + "\n")


def table(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    print("| model | mode | draws | N | cov. 50% raw → cal. | cov. 90% raw → cal. | width 90% raw → cal. | CRPS | "
          "quantile CRPS | energy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = f"{Path(r['model']).parent.parent.name}/{Path(r['model']).parent.name}"
        print(f"| {name} | {r['mode']} | {r['draws']} | {r['n']} | {r['coverage50']:.3f} → {r['coverage50_cal']:.3f} | "
              f"{r['coverage90']:.3f} → {r['coverage90_cal']:.3f} | {r['width90']:.4f} → {r['width90_cal']:.4f} | "
              f"{r['crps']:.4f} | {r['quantile_crps']:.4f} | {r['energy']:.3f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--rate", type=float, default=0.5, help="the training missing rate the model was fitted at")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modes", nargs="+", default=["guidance"])
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("-n", type=int, default=None, help="test images (default: the preset's n_eval)")
    p.add_argument("--images", type=int, default=500, help="calibration images")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--table", action="store_true")
    args = p.parse_args()
    if args.table:
        table(args.out)
    else:
        for model in args.models:
            run(model, args.preset, args.rate, args.seed, args.modes, args.draws, args.n, args.images, args.out)


if __name__ == "__main__":
    main()
