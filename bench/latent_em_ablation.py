"""Ablation of EM for LDMiss's latent prior (methods/latent_em.py) at the `cpu` preset's sizes.

The preset's LDMiss is fitted once per rate on the sweep's own training subset, mask and fit seed
(through the sweep's fit cache under ``--cache``, so it is the very model the grid evaluates), then
each variant continues from a copy of it:

- ``control``: the M-step alone — the prior trained ``em.train.steps`` more steps on the same
  encoder means (what the extra training buys without EM);
- ``posterior`` / ``reencode``: ``laps`` laps of E-step (self-guided draws, ``em.steps`` steps) and
  M-step, keeping the drawn latent or re-encoding the completed image.

Each variant is scored as the sweep scores a run: sample FID/IS (N = ``n_eval``), the prior's target
(decode of the latents it was trained on last), and one-draw self-guided imputation of the test set.
One JSON line per (rate, variant) is appended to ``--out``; ``--table`` prints them.

    python bench/latent_em_ablation.py --rate 0.8 --variants control posterior reencode
    python bench/latent_em_ablation.py --table
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from ldmiss import rng
from ldmiss.config import deep_update, merge
from ldmiss.experiments.config import load_preset
from ldmiss.experiments.evaluation import METRICS, RunContext
from ldmiss.experiments.protocol import held_out_real, reference_stats, stream_seed, test_data, training_data
from ldmiss.experiments.sweep import fit_or_reuse
from ldmiss.methods import get_method_class
from ldmiss.methods.fit_options import FitOptions
from ldmiss.methods.latent_em import run_em
from ldmiss.methods.vae_ops import encode_means
from ldmiss.missing import apply_mask

VARIANTS = {  # the em settings of each variant (laps added from --laps where not given)
    "control": {"laps": 0},
    "posterior": {"e_step": "posterior"},
    "reencode": {"e_step": "reencode"},
}


def continue_fit(base, variant: str, em: dict, x, m, seed: int, progress: bool):
    """A copy of the fitted ``base`` with the variant's EM (or, for ``control``, only its M-step) run on it."""
    model = copy.deepcopy(base)
    model.config = merge(model.config, {"em": em}, "ldmiss")
    model._config_changed()
    generator = rng.generator(seed)
    z = encode_means(model.vae, apply_mask(x, m), m, model.device)
    t0 = time.perf_counter()
    with rng.isolated(None, model.device):
        if variant == "control":
            model.prior.fit(z, generator, progress, train=model.config.em.train, desc="latent prior (control)")
        else:
            run_em(model, z, apply_mask(x, m), m, generator, progress, FitOptions())
    return model, time.perf_counter() - t0


def score(cfg, model, rate: float, seed: int, x, m) -> dict:
    """The sweep's sample, prior-target and imputation metrics of ``model`` (sweep.run_one's context)."""
    x_test, m_test = test_data(cfg, seed)
    ctx = RunContext(cfg, model, rate, seed, x, m, x_test, m_test, held_out_real(cfg, seed),
                     reference_stats(cfg.dataset, cfg.n_ref, None))
    out = {name: METRICS[name].fn(ctx) for name in ("sample", "prior_target", "impute")}
    out["prior_gap"] = out["sample"]["fid"] / out["prior_target"]["fid"]
    return {**out, "timings": ctx.timings}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--rate", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="*", default=[], choices=sorted(VARIANTS))
    ap.add_argument("--laps", type=int, default=1)
    ap.add_argument("--em", default="", help="JSON em overrides added to every variant, e.g. '{\"steps\": 50}'")
    ap.add_argument("--base", action="store_true", help="also score the preset's LDMiss itself")
    ap.add_argument("--base-set", default="", help="JSON overrides of the preset's LDMiss before its fit, e.g. "
                    "'{\"prior\": {\"train\": {\"steps\": 6000}}}' (its β-VAE stays the cached one)")
    ap.add_argument("--cache", default="runs/latent_em_ablation", help="sweep-style root whose fit cache is used")
    ap.add_argument("--out", default="bench/latent_em_ablation.jsonl")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.table:
        return table(Path(args.out))
    cfg = load_preset(args.preset)
    x, m = training_data(cfg, args.rate, args.seed)
    base_overrides = cfg.overrides_for("ldmiss")
    deep_update(base_overrides, json.loads(args.base_set) if args.base_set else {})
    base = get_method_class("ldmiss")(None, device="cpu", **base_overrides)
    base, fit_s, _, _ = fit_or_reuse(base, x, m, stream_seed(args.seed, "fit", args.rate), Path(args.cache), "cpu",
                                     True, None, 300.0)
    jobs = (["base"] if args.base else []) + list(args.variants)
    for variant in jobs:
        em = {"laps": args.laps, **VARIANTS.get(variant, {}), **(json.loads(args.em) if args.em else {})}
        if variant == "base":
            model, em_s, em = base, 0.0, {}
        else:
            model, em_s = continue_fit(base, variant, em, x, m, stream_seed(args.seed, "fit", args.rate) + 1, True)
        row = {"preset": args.preset, "rate": args.rate, "seed": args.seed, "variant": variant, "em": em,
               "base_set": args.base_set,
               "base_fit_seconds": fit_s, "em_seconds": em_s, "threads": torch.get_num_threads(),
               **score(cfg, model, args.rate, args.seed, x, m)}
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def table(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    print("| rate | base | variant | em | fit s | EM s | sample FID | IS | target FID | gap | guidance MSE | impute FID |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        em = ", ".join(f"{k}={v}" for k, v in r["em"].items() if k not in ("e_step",)) or "—"
        imp = r["impute"]["guidance"]
        base = r.get("base_set") or "preset"
        print(f"| {r['rate']} | {base} | {r['variant']} | {em} | {r['base_fit_seconds']:.0f} | {r['em_seconds']:.0f} | "
              f"{r['sample']['fid']:.1f} | {r['sample']['is']:.2f} | {r['prior_target']['fid']:.1f} | {r['prior_gap']:.2f} | "
              f"{imp['mse']:.5f} | {imp['fid']:.2f} |")


if __name__ == "__main__":
    main()
