"""Where the CPU time goes: achieved FLOP/s of LDMiss's two hot loops against this machine's measured
matrix-multiply peak, in fp32 and bf16, and what closes the distance.

The two loops are (1) the latent prior's training step (the `cpu` preset's MLP, width 512 × 4 over the
2×7×7 latent, batch 1,024, Adam included) and (2) one self-guided imputation step (the prior's
ε-network forward and backward, the β-VAE decoder forward and backward through Tweedie's x̂₀, batch
500). FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions: what the peak measures); the peak is the best of a 2048² GEMM in the same process and
thread count. Variants: precision, batch, threads, ``torch.compile``. One JSON line per measurement
is appended to ``--out``; ``--table`` prints them (ratios only mean something within one run: hosts
differ 2–3×, and other jobs on the machine lower every number alike).

    python bench/flops.py --threads 1 --precisions fp32 bf16
    python bench/flops.py --table
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

OUT = Path(__file__).with_name("flops.jsonl")
LATENT = (2, 7, 7)


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up (and compilation)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_peak(precision: str, n: int = 2048) -> float:
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / _timed(lambda: a @ b, 3)


def prior_step(precision: str, batch: int, compile_net: bool):
    """(timed step, step to count) for one training step of the `cpu` preset's prior network (ε-MSE at random times, Adam)."""
    from ldmiss.nets import build_eps_net
    net = build_eps_net("mlp", LATENT, width=512, depth=4)
    fwd = torch.compile(net) if compile_net else net
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x, t = torch.randn(batch, *LATENT), torch.rand(batch)

    def step():
        with _autocast(precision):
            loss = (fwd(x, t).float() - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, step


def guidance_step(precision: str, batch: int, compile_net: bool):
    """(timed step, step to count) for one self-guided step: ε-net forward, Tweedie x̂₀, decoder,
    masked squared error, gradient wrt x_t."""
    from ldmiss.diffusion import VPSDE
    from ldmiss.diffusion.conditioners.guidance import SelfGuidance
    from ldmiss.nets import VAE, build_eps_net
    net = build_eps_net("mlp", LATENT, width=512, depth=4).requires_grad_(False)
    vae = VAE(1, 2, 32).requires_grad_(False)
    sde = VPSDE()
    eps = torch.compile(net) if compile_net else net
    decode = torch.compile(vae.decode) if compile_net else vae.decode

    def score(x, t):
        with _autocast(precision):
            return sde.score_from_eps(eps(x, t).float(), t)

    def dec(z):
        with _autocast(precision):
            return decode(z).float()
    x_obs = torch.rand(batch, 1, 28, 28)
    mask = (torch.rand_like(x_obs) > 0.5).float()
    guided = SelfGuidance(score, sde, dec, x_obs * mask, mask)
    x, t = torch.randn(batch, *LATENT), torch.full((batch,), 0.5)

    def same_work_by_backward():
        """The guided score's work with ``backward()`` in place of ``autograd.grad`` (which
        FlopCounterMode cannot follow): the same products, for counting only."""
        xr = x.detach().requires_grad_(True)
        s_u = score(xr, t)
        loss = (mask * (x_obs * mask - dec(sde.tweedie(xr, s_u, t)))).pow(2).sum()
        loss.backward()
    return (lambda: guided(x, t)), same_work_by_backward


LOOPS = {"prior training step": (prior_step, 1024), "guided imputation step": (guidance_step, 500)}


def run(threads: int, precisions: list[str], batches: list[float], compile_too: bool, out: Path) -> None:
    torch.set_num_threads(threads)
    for precision in precisions:
        peak = matmul_peak(precision)
        print(f"{precision}: matmul peak {peak / 1e9:.1f} GFLOP/s on {threads} thread(s)", flush=True)
        for loop, (build, default_batch) in LOOPS.items():
            for scale in batches:
                for compiled in ((False, True) if compile_too else (False,)):
                    batch = max(1, int(default_batch * scale))
                    fn, _ = build(precision, batch, compiled)
                    flops = _flops(build(precision, batch, False)[1])
                    seconds = _timed(fn, 5)
                    row = {"loop": loop, "precision": precision, "batch": batch, "compiled": compiled,
                           "threads": threads, "flops": flops, "seconds": seconds, "achieved": flops / seconds,
                           "peak": peak, "fraction_of_peak": flops / seconds / peak, "host": platform.node(),
                           "torch": torch.__version__}
                    print(f"  {loop:24s} batch {batch:5d} {'compiled' if compiled else 'eager   '} "
                          f"{1000 * seconds:7.1f} ms  {flops / seconds / 1e9:6.1f} GFLOP/s  "
                          f"{100 * row['fraction_of_peak']:5.1f}% of peak", flush=True)
                    with open(out, "a") as fh:
                        fh.write(json.dumps(row) + "\n")


def table(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    print("| loop | precision | threads | batch | compiled | ms | GFLOP/s | peak GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['loop']} | {r['precision']} | {r['threads']} | {r['batch']} | {'yes' if r['compiled'] else 'no'} | "
              f"{1000 * r['seconds']:.1f} | {r['achieved'] / 1e9:.1f} | {r['peak'] / 1e9:.1f} | "
              f"{100 * r['fraction_of_peak']:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    p.add_argument("--batch-scales", nargs="+", type=float, default=[1.0], help="multiples of each loop's batch")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd networks")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--table", action="store_true")
    args = p.parse_args()
    if args.table:
        table(args.out)
    else:
        run(args.threads, args.precisions, args.batch_scales, args.compile, args.out)


if __name__ == "__main__":
    main()
