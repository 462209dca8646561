"""Choosing each conditioner's main knob before the comparison — on training images, never on test ones.

A comparison of imputation functions is only fair if each runs at a sensible setting, and the
papers' defaults were set for pixel priors of other data (DPS's ζ = 0.5, DAPS's η₀ = 1e-4 for FFHQ).
For a fitted model, each candidate setting imputes ``-n`` images of the model's own training subset
(complete images from the protocol of ``--preset``/``--seed`` at ``--rate``, under a fresh MCAR mask at
the test rate, drawn from a stream no evaluation uses) at one budget of network evaluations, one draw;
the lowest MSE on missing pixels wins. One JSON line per candidate is appended to ``--out``; ``--table``
prints them with the ``--set`` options for ``ldmiss compare-imputers``.

    python bench/conditioner_tuning.py results/cpu/ldmiss/rate0.50_seed0/model --rate 0.5
    python bench/conditioner_tuning.py results/cpu/ddpm/rate0.50_seed0/model -n 100 --nfe 50 --modes dps --values 6 10
    python bench/conditioner_tuning.py --table
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ldmiss.diffusion.conditioners import get_conditioner
from ldmiss.experiments.config import load_preset, parse_set
from ldmiss.experiments.protocol import training_data
from ldmiss.methods import load_method
from ldmiss.methods.artifact import read_artifact_config
from ldmiss.metrics import missing_mse
from ldmiss.missing import apply_mask, make_mask

# (conditioner, option, candidates); the first candidate is the paper's / the package's default.
# DAPS runs 20 Langevin steps per level instead of the paper's 100 (a fifth of its decoder cost).
GRID = [
    ("dps", "impute.dps.step_size", [0.5, 1.0, 1.5, 3.0]),
    ("pigdm", "impute.pigdm.sigma_y", [0.05, 0.02, 0.1, 0.2]),
    ("daps", "impute.daps.langevin_lr", [1e-4, 1e-3, 1e-2, 3e-2]),
    ("smc", "impute.smc.sigma_y", [0.05, 0.1, 0.2, 0.4]),
    ("repaint", "impute.repaint.resample_jumps", [1, 2]),
    ("guidance", "impute.guidance.weight", [1.0, 0.5, 2.0]),  # "guidance.weight" in rows before 0.2
]
FIXED = {"daps": ["impute.daps.langevin_steps=20"]}
TUNING_MASK_SEED = 424242  # no sweep stream uses it


def tune(args) -> None:
    model = load_method(args.model, device="cpu")
    weights = read_artifact_config(args.model)["weights_sha256"]  # a path can hold a retrained model
    cfg = load_preset(args.preset)
    x, _ = training_data(cfg, args.rate, args.seed)
    x = x[:args.n]
    m = make_mask("mcar", x, cfg.test_rate, TUNING_MASK_SEED)
    x_obs = apply_mask(x, m)
    base = model.config  # set_inference_options builds a new config; this one is never changed
    for mode, option, values in GRID:
        if mode not in model.supported_modes() or (args.modes and mode not in args.modes):
            continue
        cond = get_conditioner(mode)
        for value in (args.values or values):
            model.config = base
            model.set_inference_options(parse_set(FIXED.get(mode, []) + [f"{option}={value}"]))
            steps = cond.steps_for_nfe(model.conditioner_config(mode), args.nfe)
            t0 = time.perf_counter()
            out = model.impute(x_obs, m, mode=mode, steps=steps, seed=1, progress=False).mean
            row = {"model": args.model, "weights_sha256": weights, "method": model.name, "mode": mode, "option": option,
                   "value": value,
                   "fixed": FIXED.get(mode, []), "nfe": args.nfe, "steps": steps, "n": len(x),
                   "mse": missing_mse(out, x, m), "seconds": time.perf_counter() - t0}
            print(json.dumps(row), flush=True)
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


def table(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    # one table per model: its path and, for rows that record it, its weights' digest (older rows do not)
    for model in dict.fromkeys((r["model"], r.get("weights_sha256")) for r in rows):
        sub = [r for r in rows if (r["model"], r.get("weights_sha256")) == model]
        weights = f", weights {model[1][:12]}" if model[1] else ""
        print(f"\n{sub[0]['method']} ({model[0]}{weights}), {sub[0]['n']} training images, NFE {sub[0]['nfe']}, one draw\n")
        print("| conditioner | option | value | MSE | s |\n|---|---|---|---|---|")
        best = {}
        for r in sub:
            if r["mode"] not in best or r["mse"] < best[r["mode"]]["mse"]:
                best[r["mode"]] = r
            print(f"| {r['mode']} | `{r['option']}` | {r['value']} | {r['mse']:.4f} | {r['seconds']:.1f} |")
        sets = " ".join(f"--set {o}" for b in best.values() for o in b["fixed"] + [f"{b['option']}={b['value']}"])
        print(f"\nbest: {sets}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model directory")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--rate", type=float, default=0.5, help="the model's training rate (its training subset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-n", type=int, default=200)
    p.add_argument("--nfe", type=int, default=100)
    p.add_argument("--modes", nargs="+", default=None)
    p.add_argument("--values", nargs="+", type=float, default=None,
                   help="extra candidates instead of the grid's (e.g. when the best is at its edge), with one --modes")
    p.add_argument("--out", default=str(Path(__file__).with_name("conditioner_tuning.jsonl")))
    p.add_argument("--table", action="store_true")
    args = p.parse_args()
    if args.table:
        table(Path(args.out))
    else:
        if not args.model:
            p.error("a model directory is needed unless --table")
        tune(args)


if __name__ == "__main__":
    main()
