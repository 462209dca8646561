"""Sample quality against cost: FID and IS of a fitted model's unconditional samples at network
evaluation budgets 5 … 200, for every solver and time grid asked for, side by side in one process.

Each (solver, grid, NFE) draws N samples (``-n``, 2,000 as the sweep) with the same seed and scores
them against the 10,000 MNIST test digits, as the sweep's sample FID. A solver's steps are what its
evaluations per step allow within the budget (Heun: 2 per step but the last). Rows are appended to
``--out`` (JSON lines); ``--table`` prints them as a markdown table, ``--plot`` draws FID against NFE.

    python bench/nfe_curve.py results/cpu_models/ldmiss/rate0.50_seed0/model \\
        --solvers ancestral:linear ode:linear heun:edm dpmpp2m:logsnr --nfe 5 10 25 50 100 200
    python bench/nfe_curve.py --table
    python bench/nfe_curve.py --plot docs/figures/nfe_curve.png
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

OUT = Path(__file__).with_name("nfe_curve.jsonl")


def steps_for(method: str, nfe: int) -> int:
    """The most steps whose evaluations fit in ``nfe`` (samplers.sampler_nfe inverted)."""
    from ldmiss.diffusion.samplers import EVALS_PER_STEP
    return max(1, (nfe - 1) // EVALS_PER_STEP[method] + 1)


def sampler_options(model, method: str, grid: str, steps: int) -> dict:
    table = {"method": method, "grid": grid, "steps": steps}
    return {"prior": {"sampler": table}} if hasattr(model, "prior") and not hasattr(model.config, "sampler") \
        else {"sampler": table}


def run(model_dir: str, solvers: list[str], budgets: list[int], n: int, seed: int, out: Path, threads: int) -> None:
    from ldmiss.data import load_mnist
    from ldmiss.diffusion.samplers import sampler_nfe
    from ldmiss.methods import load_method
    from ldmiss.metrics import FIDReference, inception_score
    torch.set_num_threads(threads)
    reference = FIDReference(torch.from_numpy(load_mnist("test").images).float() / 255, dataset="mnist")
    for solver in solvers:
        method, grid = solver.split(":")
        for nfe in budgets:
            steps = steps_for(method, nfe)
            model = load_method(model_dir, device="cpu")
            model.set_inference_options(sampler_options(model, method, grid, steps))
            t0 = time.perf_counter()
            samples = torch.as_tensor(model.sample(n, seed=seed, progress=False))
            seconds = time.perf_counter() - t0
            row = {"model": model_dir, "method": model.name, "solver": method, "grid": grid, "steps": steps,
                   "nfe": sampler_nfe(method, steps), "budget": nfe, "n": n, "seed": seed,
                   "fid": reference.fid(samples), "is": inception_score(samples)[0], "seconds": seconds,
                   "threads": threads, "host": platform.node()}
            print(f"{solver:18s} NFE {row['nfe']:4d} ({steps:3d} steps)  FID {row['fid']:7.2f}  IS {row['is']:.2f}  "
                  f"{seconds:6.1f} s", flush=True)
            with open(out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _model_label(path: str) -> str:
    p = Path(path)
    return f"{p.parent.parent.name}/{p.parent.name}"


def table(out: Path) -> None:
    rows = _rows(out)
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        budgets = sorted({r["budget"] for r in mine})  # a solver's NFE is the most that fits (Heun: 2k − 1)
        solvers = list(dict.fromkeys(f"{r['solver']}:{r['grid']}" for r in mine))
        print(f"\n{_model_label(model)} — sample FID (IS) at N = {mine[0]['n']}\n")
        print("| solver : grid | " + " | ".join(f"NFE ≤ {b}" for b in budgets) + " |")
        print("|---|" + "---|" * len(budgets))
        for s in solvers:
            cells = []
            for b in budgets:
                hit = [r for r in mine if f"{r['solver']}:{r['grid']}" == s and r["budget"] == b]
                cells.append(f"{hit[-1]['fid']:.1f} ({hit[-1]['is']:.2f})" if hit else "—")
            print(f"| {s} | " + " | ".join(cells) + " |")


def plot(out: Path, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = _rows(out)
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False, layout="constrained")
    for ax, model in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == model]
        for s in dict.fromkeys(f"{r['solver']}:{r['grid']}" for r in mine):
            pts = sorted((r["nfe"], r["fid"]) for r in mine if f"{r['solver']}:{r['grid']}" == s)
            ax.plot(*zip(*pts), marker="o", label=s)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("network evaluations per sample")
        ax.set_ylabel("sample FID")
        ax.set_title(_model_label(model), fontsize=9)
        ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help="saved model folders")
    p.add_argument("--solvers", nargs="+", default=["ancestral:linear", "ode:linear", "heun:edm", "dpmpp2m:logsnr"],
                   help="sampler:grid pairs")
    p.add_argument("--nfe", nargs="+", type=int, default=[5, 10, 25, 50, 100, 200])
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--table", action="store_true")
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args()
    if args.table:
        table(args.out)
    elif args.plot:
        plot(args.out, args.plot)
    else:
        for model in args.models:
            run(model, args.solvers, args.nfe, args.n, args.seed, args.out, args.threads)


if __name__ == "__main__":
    main()
