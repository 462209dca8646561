"""Training-step time of the latent prior's ε-networks at one latent size: the MLP against the
convolutional U-Nets that latents over ``prior.mlp_max_values`` values used to switch to.

Why: for 32×32 RGB photo patches a latent of 16×8×8 = 1,024 values switched the prior to a U-Net
reported ≈ 50× slower per step than the MLP; the target is ≤ 3× the MLP's step at equal latent size,
or the MLP with a warning. One thread, the preset's batch (512), Adam step included; ratios against
the MLP measured in the same run (compare only within one run: hosts differ 2–3×).

    python bench/prior_step_time.py --latent 16 8 8 --precision bf16
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ldmiss.nets import build_eps_net

OUT = Path(__file__).with_name("prior_step_time.jsonl")
NETS = {"mlp 512×4": ("mlp", {"width": 512, "depth": 4}),
        "unet 64 [1,2] (0.1 large_net)": ("unet", {"base": 64, "mults": [1, 2]}),
        "unet 32 [1]": ("unet", {"base": 32, "mults": [1]})}


def step_seconds(kind, options, shape, batch, precision, repeats):
    net = build_eps_net(kind, tuple(shape), **options)
    opt = torch.optim.Adam(net.parameters())
    x, t = torch.randn(batch, *shape), torch.rand(batch)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = (net(x, t).float() - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - t0) / repeats, sum(p.numel() for p in net.parameters())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latent", type=int, nargs=3, default=[16, 8, 8])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows, base = [], None
    for name, (kind, options) in NETS.items():
        sec, params = step_seconds(kind, options, args.latent, args.batch, args.precision, args.repeats)
        base = base or sec
        row = {"net": name, "latent": args.latent, "batch": args.batch, "precision": args.precision,
               "ms_per_step": round(1000 * sec, 1), "ratio_to_mlp": round(sec / base, 2), "parameters": params,
               "host": platform.node()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    with open(OUT, "a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
