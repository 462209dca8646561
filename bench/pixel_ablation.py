"""Tuning the pixel-space baselines at the `cpu` preset's budget, the way the latent prior was tuned.

A comparison is only as honest as its weakest baseline, so the pixel DDPM (MissDiff loss) gets the
candidates that fixed the latent prior — v-prediction, log-SNR-normal training times, warm-up +
cosine learning rate, a larger rate — each at the preset's own training steps and batch (equal
cost), trained on the sweep's own training subset, mask and fit seed at one (rate, seed), sampled
with the preset's sampler (or ``--samplers``) and scored on N samples against the sweep's FID
reference. One JSON line per (variant, sampler) is appended to ``--out``; ``--table`` prints them.

    python bench/pixel_ablation.py --rate 0.5 --variants preset v+cosine v+logsnr+cosine
    python bench/pixel_ablation.py --table
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ldmiss.config import deep_update
from ldmiss.experiments.config import load_preset
from ldmiss.experiments.protocol import reference_stats, stream_seed, training_data
from ldmiss.methods import get_method_class
from ldmiss.metrics import inception_score
from ldmiss.missing import apply_mask

COSINE = {"train": {"lr_schedule": "cosine", "warmup_steps": 200}}
VARIANTS = {
    "preset": {},
    "v": {"loss": {"prediction": "v"}},
    "v+cosine": {"loss": {"prediction": "v"}, **COSINE},
    "v+logsnr+cosine": {"loss": {"prediction": "v", "time_dist": "logsnr"}, **COSINE},
    "v+cosine+lr2e-3": {"loss": {"prediction": "v"}, "train": {**COSINE["train"], "lr": 2e-3}},
    "eps+cosine": COSINE,
    # EDM's preconditioning and loss weighting with its log-normal noise levels (diffusion/parameterization.py)
    "edm": {"loss": {"prediction": "edm", "time_dist": "logsnr"}},
    "edm+cosine": {"loss": {"prediction": "edm", "time_dist": "logsnr"}, **COSINE},
}


def run_variant(name: str, args) -> None:
    cfg = load_preset(args.preset)
    over = cfg.overrides_for(args.method)
    deep_update(over, json.loads(json.dumps(VARIANTS[name])))
    deep_update(over, json.loads(args.extra) if args.extra else {})
    x, m = training_data(cfg, args.rate, args.seed)
    model = get_method_class(args.method)(None, device="cpu", **over)
    t0 = time.perf_counter()
    model.fit(apply_mask(x, m), m, seed=stream_seed(args.seed, "fit", args.rate), progress=True)
    fit_s = time.perf_counter() - t0
    ref = reference_stats(cfg.dataset, cfg.n_ref, None)
    for spec in args.samplers or [None]:
        if spec is not None:
            method, steps = spec.split(":")
            model.config.sampler.method, model.config.sampler.steps = method, int(steps)
        sc = model.config.sampler
        t0 = time.perf_counter()
        samples = model.sample(args.n, seed=stream_seed(args.seed, "sample", args.rate), progress=False)
        row = {"method": args.method, "variant": name, "extra": args.extra, "preset": args.preset,
               "rate": args.rate, "seed": args.seed, "n": args.n, "train": over.get("train"),
               "sampler": f"{sc.method} {sc.steps}", "fit_seconds": fit_s,
               "sample_seconds": time.perf_counter() - t0, "fid": ref.fid(samples),
               "is": inception_score(samples)[0], "threads": torch.get_num_threads()}
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def table(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    print("| method | rate | variant | extra | sampler | fit s | sample FID | IS |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['rate']} | {r['variant']} | {r['extra'] or ''} | {r['sampler']} | "
              f"{r['fit_seconds']:.0f} | {r['fid']:.1f} | {r['is']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--method", default="ddpm", choices=["ddpm", "diffputer", "diem"])
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--variants", nargs="*", default=[], choices=sorted(VARIANTS))
    ap.add_argument("--extra", default="", help="JSON overrides added to every variant")
    ap.add_argument("--samplers", nargs="*", default=[], metavar="METHOD:STEPS", help="e.g. em:50 ancestral:50")
    ap.add_argument("--out", default="bench/pixel_ablation.jsonl")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.table:
        return table(Path(args.out))
    for name in args.variants:
        run_variant(name, args)


if __name__ == "__main__":
    main()
