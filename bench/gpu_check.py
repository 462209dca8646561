"""One `paper`-preset slice per method on a GPU: fit, sample and impute throughput and peak memory.

Every method is built with the `paper` preset's networks, batch sizes and samplers, and fitted with
its training schedules shortened ``--scale`` times (every ``steps`` ÷ scale) on ``--train-size``
images at r = 0.5; then ``--n`` images are sampled and imputed (every mode). The table gives
seconds and images/s for each phase, the peak GPU memory of the method, and the fit time the full
schedule would take (fit seconds × scale; DiffPuter's E-step does not shrink with the scale, so
its estimate is high). Nothing is asserted. `bench/gpu_check.sh` is the one command to run.

    python bench/gpu_check.py --device cuda [--precision bf16] [--scale 100] [--n 1000] [--out bench/gpu_check.md]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ldmiss.config import deep_update
from ldmiss.experiments import load_preset
from ldmiss.experiments.protocol import test_data, training_data
from ldmiss.methods import get_method_class
from ldmiss.missing import apply_mask


def _device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or platform.machine()


def shortened(table: dict, scale: int) -> dict:
    """The method's overrides with every training schedule's ``steps`` divided by ``scale``."""
    out = json.loads(json.dumps(table))

    def walk(d):
        for k, v in d.items():
            if isinstance(v, dict):
                if k == "train" and "steps" in v:
                    v["steps"] = max(1, int(v["steps"]) // scale)
                walk(v)
    walk(out)
    return out


def precision_overrides(name: str, precision: str) -> dict:
    return {"ldmiss": {"prior": {"precision": precision}, "vae": {"precision": precision}},
            "vae": {"vae": {"precision": precision}}, "ddpm": {"precision": precision},
            "diffputer": {"precision": precision}}.get(name, {})


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--scale", type=int, default=100, help="divide every training schedule's steps by this")
    ap.add_argument("--train-size", type=int, default=10000)
    ap.add_argument("--n", type=int, default=1000, help="images sampled and imputed")
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--out", default="bench/gpu_check.md")
    args = ap.parse_args()
    cfg = load_preset("paper")
    cfg.train_size = args.train_size
    x, m = training_data(cfg, 0.5, 0)
    x_test, m_test = test_data(cfg, 0)
    x_test, m_test = x_test[:args.n], m_test[:args.n]
    rows = []
    for name in args.methods or cfg.methods:
        over = shortened(cfg.overrides_for(name), args.scale)
        deep_update(over, precision_overrides(name, args.precision))
        cls = get_method_class(name)
        method = cls(None, device=args.device, **over)
        dev = method.device
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        _, fit_s = timed(lambda: method.fit(apply_mask(x, m), m, seed=0, progress=False), dev)
        row = {"method": name, "fit_s": fit_s, "full_fit_estimate_s": fit_s * args.scale}
        if cls.generative:
            _, row["sample_s"] = timed(lambda: method.sample(args.n, seed=1, progress=False), dev)
        for mode in cls.impute_modes:
            _, row[f"impute_{mode}_s"] = timed(
                lambda: method.impute(x_test * m_test, m_test, mode=mode, seed=2, progress=False), dev)
        row["peak_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
        rows.append(row)
        print(json.dumps(row), flush=True)
    head = (f"gpu_check: preset paper, schedules ÷ {args.scale}, {args.train_size} training images, N = {args.n}, "
            f"{args.precision}, device {args.device} ({_device_name()}), "
            f"torch {torch.__version__}")
    lines = [head, "", "| method | fit s | full-schedule fit (est.) | sample img/s | impute img/s (per mode) | peak GPU GiB |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        imp = ", ".join(f"{k[7:-2]} {args.n / v:,.0f}" for k, v in r.items() if k.startswith("impute_"))
        samp = f"{args.n / r['sample_s']:,.0f}" if "sample_s" in r else "—"
        peak = "—" if r["peak_gib"] != r["peak_gib"] else f"{r['peak_gib']:.2f}"  # NaN off the GPU
        lines.append(f"| {r['method']} | {r['fit_s']:.1f} | {r['full_fit_estimate_s'] / 60:,.0f} min | {samp} | {imp} | {peak} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
