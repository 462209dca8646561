"""How fast a fitted model imputes all 10,000 MNIST test digits, and at what error.

Each setting imputes every test digit under one 50% MCAR mask (fixed seed), one draw, on
``--threads`` threads, and reports wall seconds, images per second and the single-draw MSE on
missing pixels; the first setting is the baseline every other is printed against (time ratio).
Settings are ``mode:steps[:batch]``. Run it on a quiet machine: the numbers are wall time.

    python bench/impute_speed.py results/cpu/ldmiss/rate0.50_seed0/model \\
        --settings guidance:100 guidance:50 guidance:35 guidance:25 --threads 2
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ldmiss.data import load_mnist
from ldmiss.methods import load_method
from ldmiss.metrics import missing_mse
from ldmiss.missing import make_mask

MASK_SEED = 2026


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--settings", nargs="+", default=["guidance:100", "guidance:50"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--rate", type=float, default=0.5)
    p.add_argument("--out", default=str(Path(__file__).with_name("impute_speed.jsonl")))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_method(args.model, device="cpu")
    x = torch.from_numpy(load_mnist("test").images[:args.n]).float() / 255
    m = make_mask("mcar", x, args.rate, MASK_SEED)
    x_obs = (x * m).numpy()
    base = None
    for setting in args.settings:
        mode, steps, *batch = setting.split(":")
        if batch:
            model.set_inference_options({"prior": {"sampler": {"batch_size": int(batch[0])}}} if model.name == "ldmiss"
                                        else {"sampler": {"batch_size": int(batch[0])}})
        t0 = time.perf_counter()
        result = model.impute(x_obs, m.numpy(), mode=mode, steps=int(steps), seed=0, progress=False)
        out = result.mean
        seconds = time.perf_counter() - t0
        base = base or seconds
        row = {"model": args.model, "setting": setting, "n": len(x), "threads": args.threads, "seconds": seconds,
               "images_per_second": len(x) / seconds, "ratio_to_first": seconds / base,
               "mse": missing_mse(out, x, m), "nfe": result.cost.nfe,
               "cpu": platform.processor() or platform.machine()}
        print(f"{setting:18s} {seconds:7.1f} s  ×{seconds / base:.2f} of the first  {len(x) / seconds:6.0f} img/s  "
              f"MSE {row['mse']:.4f}", flush=True)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
