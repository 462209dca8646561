"""How fast a fitted model imputes all 10,000 MNIST test digits, and at what error.

Each setting imputes every test digit under one 50% MCAR mask (fixed seed), one draw, on
``--threads`` threads, and reports wall seconds, images per second, network evaluations per image
and the single-draw MSE on missing pixels; the first setting is the baseline every other is
printed against (time ratio). Settings are ``mode:steps[:batch][:KEY=VALUE,…]``, the options being
inference options of the model as ``--set`` takes them, with ``sampler`` and ``grid`` short for the
prior's sampler method and time grid (``prior.sampler.*`` for LDMiss, ``sampler.*`` for a pixel
model). Each setting starts from the model as saved. Run it on a quiet machine: the numbers are
wall time.

    python bench/impute_speed.py results/cpu/ldmiss/rate0.50_seed0/model \\
        --settings guidance:100 guidance:25 guidance:25:sampler=ode guidance:13:sampler=heun,grid=logsnr
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ldmiss.config import parse_set
from ldmiss.data import load_mnist
from ldmiss.methods import load_method
from ldmiss.metrics import missing_mse
from ldmiss.missing import make_mask

MASK_SEED = 2026


def parse_setting(setting: str, model) -> tuple[str, int, dict]:
    """``mode:steps[:batch][:KEY=VALUE,…]`` → (mode, steps, inference options of ``model``)."""
    mode, steps, *rest = setting.split(":")
    sampler_key = "prior.sampler" if hasattr(model, "prior") and not hasattr(model.config, "sampler") else "sampler"
    assignments = []
    for part in rest:
        if "=" not in part:
            assignments.append(f"{sampler_key}.batch_size={int(part)}")
            continue
        for item in part.split(","):
            key, value = item.split("=", 1)
            key = {"sampler": f"{sampler_key}.method", "grid": f"{sampler_key}.grid"}.get(key, key)
            assignments.append(f"{key}={value}")  # a bare word stays a string (parse_set)
    return mode, int(steps), parse_set(assignments)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--settings", nargs="+", default=["guidance:100", "guidance:50"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--rate", type=float, default=0.5)
    p.add_argument("--out", default=str(Path(__file__).with_name("impute_speed.jsonl")))
    p.add_argument("--quality", action="store_true", help="also FID / IS of the first draws against the 10,000 "
                   "test digits and, with --draws ≥ 2, the draws' coverage and CRPS (a faster solve must not "
                   "buy its MSE by collapsing the draws)")
    p.add_argument("--draws", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(load_mnist("test").images[:args.n]).float() / 255
    m = make_mask("mcar", x, args.rate, MASK_SEED)
    x_obs = (x * m).numpy()
    reference = None
    if args.quality:
        from ldmiss.metrics import FIDReference
        reference = FIDReference(torch.from_numpy(load_mnist("test").images).float() / 255, dataset="mnist")
    base = None
    for setting in args.settings:
        model = load_method(args.model, device="cpu")
        mode, steps, options = parse_setting(setting, model)
        model.set_inference_options(options)
        t0 = time.perf_counter()
        result = model.impute(x_obs, m.numpy(), draws=args.draws, mode=mode, steps=int(steps), seed=0, progress=False)
        out = result.first
        seconds = time.perf_counter() - t0
        base = base or seconds
        row = {"model": args.model, "setting": setting, "n": len(x), "threads": args.threads, "seconds": seconds,
               "images_per_second": len(x) / seconds, "ratio_to_first": seconds / base,
               "mse": missing_mse(out, x, m), "nfe": result.cost.nfe, "backward_nfe": result.cost.backward_nfe,
               "cpu": platform.processor() or platform.machine(), "draws": args.draws}
        if reference is not None:
            from ldmiss.experiments.evaluation import imputation_quality
            from ldmiss.metrics import inception_score
            row.update(fid=reference.fid(torch.as_tensor(out)), is_=inception_score(torch.as_tensor(out))[0],
                       **imputation_quality(result.draws, result.mean, x, m))
        print(f"{setting:40s} {seconds:7.1f} s  ×{seconds / base:.2f} of the first  {len(x) / seconds:6.0f} img/s  "
              f"NFE {result.cost.nfe:5.0f}  MSE {row['mse']:.5f}"
              + (f"  FID {row['fid']:.2f}  IS {row['is_']:.2f}" if reference is not None else "")
              + (f"  cov90 {row['coverage90']:.3f}  CRPS {row['crps']:.4f}" if "coverage90" in row else ""), flush=True)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
