"""Fit one method of a preset with changed fit options on one condition's training data, impute that
condition's test set, and print the one-draw missing-pixel MSE: an ablation of a *fit* option
without a whole sweep (bench/variant_ablation.py does inference options on saved models).

    python bench/fit_variant.py --preset mnar --condition mnar --method notmiwae \\
        --variant vae.missingness=selfmask_known --variant vae.train.steps=2400

Each ``--variant`` is one fit (several options in one fit: space-separated in one argument). One
JSON line per fit on stdout.
"""
from __future__ import annotations

import argparse
import json
import time

from ldmiss.config import deep_update, parse_set
from ldmiss.experiments.config import load_preset
from ldmiss.experiments.protocol import scored_test_data, stream_seed, training_data
from ldmiss.methods import get_method_class
from ldmiss.metrics import missing_mse
from ldmiss.missing import apply_mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", required=True)
    p.add_argument("--condition", default="", help="condition tag ('' or mcar: the first)")
    p.add_argument("--method", required=True)
    p.add_argument("--rate", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", action="append", default=[], help="fit options, e.g. vae.train.steps=2400")
    args = p.parse_args()
    groups = dict(load_preset(args.preset).tagged_groups())
    group = groups["" if args.condition == "mcar" else args.condition]
    x, m = training_data(group, args.rate, args.seed)
    xt, mt, unscored = scored_test_data(group, args.seed)
    for variant in args.variant:
        table = group.overrides_for(args.method)
        deep_update(table, parse_set(variant.split()))
        t0 = time.perf_counter()
        model = get_method_class(args.method)(None, device="cpu", **table).fit(apply_mask(x, m), m, seed=args.seed,
                                                                             progress=False)
        fit_seconds = time.perf_counter() - t0
        r = model.impute(apply_mask(xt, mt), mt, seed=stream_seed(args.seed, "impute", args.rate), progress=False)
        print(json.dumps({"preset": args.preset, "condition": args.condition, "method": args.method,
                          "variant": variant, "mse": missing_mse(r.first, xt, unscored), "fit_seconds": fit_seconds}),
              flush=True)


if __name__ == "__main__":
    main()
