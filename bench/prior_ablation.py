"""Ablation of the LDMiss latent prior at a fixed β-VAE (one seed, one training rate).

The β-VAE of a preset's ``ldmiss`` run is trained once, exactly as the sweep trains it (its
training subset, mask, initialisation and generator: the grid's own β-VAE for that rate and seed),
and cached with its encoder-mean latents; every variant then trains only the prior on those
latents, on the generator state the β-VAE fit left (as in the sweep, so the ``preset`` variant is
the grid's own prior), samples N images and is scored against the sweep's FID reference, beside
the prior's target (the first N decoded training latents, as the sweep scores it). Results are
appended to a JSON-lines file, one line per variant, so a long ablation can be resumed or split
over processes.

    python bench/prior_ablation.py --preset cpu --rate 0.5 --variants baseline per_dim ...
    python bench/prior_ablation.py --table [--out F]  # print the Markdown table of what ran
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch

from ldmiss.config import deep_update
from ldmiss.experiments.config import load_preset
from ldmiss.experiments.protocol import reference_stats, stream_seed, training_data
from ldmiss.methods.ldmiss import LDMiss
from ldmiss.methods.vae_ops import encode_means, fit_vae
from ldmiss.metrics import inception_score
from ldmiss.missing import apply_mask
from ldmiss.rng import generator as make_generator

# name → overrides of the preset's ldmiss config. ``OLD`` is the v0.1.0 recipe (one global scale,
# ε-prediction, t ~ U(ε, 1), constant learning rate); each variant changes the named parts of it.
OLD = {"latent_norm": "global", "loss": {"prediction": "eps", "time_dist": "uniform"},
       "train": {"lr_schedule": "constant", "warmup_steps": 0}}
COSINE = {"train": {"lr_schedule": "cosine", "warmup_steps": 200}}
V, LOGSNR = {"loss": {"prediction": "v"}}, {"loss": {"time_dist": "logsnr"}}


def _variant(*parts) -> dict:
    out = json.loads(json.dumps(OLD))
    for p in parts:
        deep_update(out, json.loads(json.dumps(p)))
    return {"prior": out}


VARIANTS = {
    "preset": {},  # the preset's own prior, unchanged (combine with --extra)
    "baseline": _variant(),
    "per_dim": _variant({"latent_norm": "per_dim"}),
    "whiten": _variant({"latent_norm": "whiten"}),
    "per_dim+cosine": _variant({"latent_norm": "per_dim"}, COSINE),
    "per_dim+v": _variant({"latent_norm": "per_dim"}, V),
    "per_dim+logsnr": _variant({"latent_norm": "per_dim"}, LOGSNR),
    "per_dim+v+logsnr": _variant({"latent_norm": "per_dim"}, V, LOGSNR),
    "per_dim+v+logsnr+cosine": _variant({"latent_norm": "per_dim"}, V, LOGSNR, COSINE),
    "whiten+v+logsnr+cosine": _variant({"latent_norm": "whiten"}, V, LOGSNR, COSINE),
}


def cached_vae(preset, rate, seed, cache: Path):
    """Train (or load) the preset's β-VAE for (rate, seed) exactly as the sweep's ``ldmiss`` run does
    (initialised from the fit seed, trained on the fit seed's generator), so it is the grid's own
    β-VAE; return (model shell, latents, seconds, the generator state the fit left for the prior).

    Rows without ``"vae": "sweep"`` in the JSON-lines file (older ones) used a β-VAE initialised
    from torch's default seed and a fresh generator for the prior instead: the same recipe, another fit (its target FID at
    r = 0 was 6.1 against the grid's 3.2–4.1)."""
    cfg = load_preset(preset)
    path = cache / f"{preset}_r{rate:.2f}_s{seed}_sweep.pt"
    x, m = training_data(cfg, rate, seed)
    fit_seed = stream_seed(seed, "fit", rate)
    model = LDMiss(None, device="cpu", **cfg.overrides_for("ldmiss"))
    model.image_shape = tuple(x.shape[1:])
    torch.manual_seed(fit_seed)  # as Method.fit: the network initialisation
    model._build(model.image_shape)
    if path.is_file():
        state = torch.load(path)
        model.vae.load_state_dict(state["vae"])
        model.vae.eval().requires_grad_(False)
        return model, state["z"], state["vae_seconds"], state["generator"]
    t0 = time.perf_counter()
    gen = make_generator(fit_seed)
    model.vae, _ = fit_vae(model.vae, model.config.vae, apply_mask(x, m), m, gen, True, "cpu")
    seconds = time.perf_counter() - t0
    z = encode_means(model.vae, apply_mask(x, m), m, "cpu")
    cache.mkdir(parents=True, exist_ok=True)
    torch.save({"vae": model.vae.state_dict(), "z": z, "vae_seconds": seconds, "generator": gen.get_state()}, path)
    return model, z, seconds, gen.get_state()


def run_variant(name, overrides, args, out: Path):
    cfg = load_preset(args.preset)
    base, z, _, gen_state = cached_vae(args.preset, args.rate, args.seed, Path(args.cache))
    ldm_over = cfg.overrides_for("ldmiss")
    deep_update(ldm_over, overrides)
    deep_update(ldm_over, json.loads(args.extra) if args.extra else {})
    model = LDMiss(None, device="cpu", **ldm_over)
    model.image_shape = base.image_shape
    torch.manual_seed(stream_seed(args.seed, "fit", args.rate))
    model._build(model.image_shape)
    model.vae = base.vae
    extra_key = hashlib.sha256(args.extra.encode()).hexdigest()[:8] if args.extra else "0"
    key = f"{args.preset}_r{args.rate:.2f}_s{args.seed}_sweepvae_{name}_{extra_key}"
    ckpt = Path(args.cache) / f"prior_{key}.pt"
    if ckpt.is_file():  # the trained prior of an earlier call: evaluate more samplers on it
        state = torch.load(ckpt)
        for part, sd in state["parts"].items():
            model.prior.parts()[part].load_state_dict(sd)
        info = state["info"]
    else:
        gen = torch.Generator()
        gen.set_state(gen_state)  # the sweep's prior trains on the generator its β-VAE fit left
        info = model.prior.fit(z, gen, progress=True)
        torch.save({"parts": {k: v.state_dict() for k, v in model.prior.parts().items()}, "info": info}, ckpt)
    model.prior.net.eval().requires_grad_(False)
    model.meta["fitted"] = True
    ref = reference_stats(cfg.dataset, cfg.n_ref, None)
    with torch.no_grad():  # the sweep's target: the first N training images (a random subset already)
        target = model.vae.decode(z[:args.n]).numpy()
    target_fid, target_is = ref.fid(target), inception_score(target)[0]
    for spec in args.samplers or [None]:
        if spec is not None:
            method, grid, steps = spec.split(":")
            model.prior.cfg.sampler.method, model.prior.cfg.sampler.grid = method, grid
            model.prior.cfg.sampler.steps = int(steps)
        sc = model.prior.cfg.sampler
        t0 = time.perf_counter()
        sample_seed = stream_seed(args.seed, "sample", args.rate) + args.sample_offset
        samples = model.sample(args.n, seed=sample_seed, progress=False)
        sample_s = time.perf_counter() - t0
        row = {"variant": name, "overrides": overrides, "extra": args.extra, "preset": args.preset,
               "rate": args.rate, "seed": args.seed, "n": args.n, "steps": model.config.prior.train.steps,
               "sampler": f"{sc.method} {sc.grid} {sc.steps}", "fit_seconds": info["seconds"],
               "final_loss": info["final_loss"], "sample_seconds": sample_s,
               "fid": ref.fid(samples), "is": inception_score(samples)[0],
               "target_fid": target_fid, "target_is": target_is, "threads": torch.get_num_threads(),
               "sample_offset": args.sample_offset, "vae": "sweep"}
        row["gap"] = row["fid"] / row["target_fid"]
        with open(out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row))


def table(out: Path):
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    by_rate = len({r["rate"] for r in rows}) > 1  # a column for r only where the file mixes rates
    if by_rate:
        rows.sort(key=lambda r: r["rate"])
    print(("| r " if by_rate else "")
          + "| variant | extra | steps | sampler | prior fit s | sample FID | IS | target FID | IS | gap |")
    print(("|---" if by_rate else "") + "|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sampler = r["sampler"] + (f", sample seed +{r['sample_offset']}" if r.get("sample_offset") else "")
        variant = r["variant"] + (" (sweep β-VAE)" if r.get("vae") == "sweep" else "")
        print((f"| {r['rate']:g} " if by_rate else "") +
              f"| {variant} | {r['extra'] or ''} | {r['steps']} | {sampler} | {r['fit_seconds']:.0f} | "
              f"{r['fid']:.1f} | {r['is']:.2f} | {r['target_fid']:.1f} | {r['target_is']:.2f} | {r['gap']:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--variants", nargs="*", default=[])
    ap.add_argument("--extra", default="", help="JSON overrides added to every variant (e.g. longer training)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache/ldmiss/ablation"))
    ap.add_argument("--out", default="bench/prior_ablation.jsonl")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samplers", nargs="*", default=[], metavar="METHOD:GRID:STEPS",
                    help="sampler settings to score each trained prior with, e.g. em:linear:100 ancestral:edm:100")
    ap.add_argument("--sample-offset", type=int, default=0,
                    help="added to the sweep's sample seed: other draws from the same prior (FID's sampling noise)")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.table:
        return table(out)
    if not args.variants:
        cached_vae(args.preset, args.rate, args.seed, Path(args.cache))
    for name in args.variants:
        run_variant(name, VARIANTS[name], args, out)


if __name__ == "__main__":
    main()
