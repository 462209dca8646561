"""fp32 versus bf16 autocast for every network a `cpu`-preset run trains or samples with.

Times one optimiser step (training) and one guided reverse step (imputation, a forward and a
backward pass) per network at the preset's batch sizes, and prints bf16's speed as a ratio to
fp32 in the same run. Whether bf16 keeps the *numbers* is a separate, longer question, answered
by training with it (docs/ablations.md, "Precision"). It also prints what ``precision = "auto"``
(the presets' setting) resolves to on this machine. Nothing is asserted.

    python bench/precision.py [--preset cpu] [--threads 1] [--iters 10] [--compile]
"""
from __future__ import annotations

import argparse
import time

import torch

from ldmiss.diffusion import VPSDE, SelfGuidance
from ldmiss.experiments import load_preset
from ldmiss.methods import DiffPuter, LDMiss, PixelDDPM
from ldmiss.methods.common import diffusion_loss, eps_score
from ldmiss.nets.precision import autocast, in_precision, native_bf16, resolve


def per_call(fn, iters: int) -> float:
    for _ in range(2):
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def train_step(net, loss, batch):
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    g = torch.Generator().manual_seed(0)

    def step():
        opt.zero_grad(set_to_none=True)
        loss(*batch, g).backward()
        opt.step()
    return step


def guided_step(score, sde, decode, x_shape, x_obs, mask):
    guided = SelfGuidance(score, sde, decode, x_obs, mask)
    x, t = torch.randn(x_shape), torch.full((x_shape[0],), 0.5)
    return lambda: guided(x, t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="a sweep with --jobs 2 on 2 cores gives each run 1")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd prior and U-Net train steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_preset(args.preset)
    torch.manual_seed(0)
    ldm = LDMiss(None, **cfg.overrides_for("ldmiss"))
    ldm._build((1, 28, 28))
    ddpm = PixelDDPM(None, **cfg.overrides_for("ddpm"))
    ddpm._build((1, 28, 28))
    sde = VPSDE()
    pc, dc, vc = ldm.config.prior, ddpm.config, ldm.config.vae
    nb, ib, pb = pc.train.batch_size, pc.sampler.batch_size, dc.sampler.batch_size
    # DiffPuter samples, imputes and runs its E-step (every training image) at its own batch size
    dput = DiffPuter(None, **cfg.overrides_for("diffputer"))
    dput._build((1, 28, 28))
    eb = dput.config.sampler.batch_size
    x_img = torch.rand(max(ib, pb, eb, dc.train.batch_size, vc.train.batch_size), 1, 28, 28)
    mask = (torch.rand_like(x_img) < 0.5).float()
    rows = []
    for precision in ("fp32", "bf16"):
        def vae_loss(xb, mb, g):
            with autocast(precision):
                return ldm.vae.loss(xb, mb, vc.beta_kl, vc.iw_samples, g).float()
        prior_score = eps_score(ldm.prior.net, sde, pc.loss.prediction, precision)
        ddpm_score = eps_score(ddpm.net, sde, dc.loss.prediction, precision)
        dput_score = eps_score(dput.net, sde, dput.config.loss.prediction, precision)
        cases = {
            f"β-VAE train step (batch {vc.train.batch_size})":
                train_step(ldm.vae, vae_loss, (x_img[:vc.train.batch_size], mask[:vc.train.batch_size])),
            f"latent prior train step (batch {nb})":
                train_step(ldm.prior.net, diffusion_loss(ldm.prior.net, sde, pc.loss, precision=precision),
                           (torch.randn(nb, *ldm.latent_shape),)),
            f"latent guided step, MLP + decoder (batch {ib})":
                guided_step(prior_score, sde, ldm.vae.decode, (ib, *ldm.latent_shape), x_img[:ib], mask[:ib]),
            f"latent guided step, MLP + decoder in bf16 (batch {ib})":
                guided_step(prior_score, sde, lambda z: in_precision(lambda a, _: ldm.vae.decode(a), precision)(z, None),
                            (ib, *ldm.latent_shape), x_img[:ib], mask[:ib]),
            f"pixel DDPM train step (batch {dc.train.batch_size})":
                train_step(ddpm.net, diffusion_loss(ddpm.net, sde, dc.loss, masked=True, precision=precision),
                           (x_img[:dc.train.batch_size] * 2 - 1, mask[:dc.train.batch_size])),
            f"pixel guided step (batch {pb})":
                guided_step(ddpm_score, sde, lambda v: (v + 1) / 2, (pb, 1, 28, 28), x_img[:pb], mask[:pb]),
            f"pixel unguided step (batch {pb})":
                (lambda s=ddpm_score, x=torch.randn(pb, 1, 28, 28), t=torch.full((pb,), 0.5): torch.no_grad()(s)(x, t)),
            f"DiffPuter unguided step (sampling, imputation and its E-step; batch {eb})":
                (lambda s=dput_score, x=torch.randn(eb, 1, 28, 28), t=torch.full((eb,), 0.5): torch.no_grad()(s)(x, t)),
        }
        if args.compile:
            cases[f"latent prior train step, compiled (batch {nb})"] = train_step(
                ldm.prior.net, diffusion_loss(ldm.prior.net, sde, pc.loss, precision=precision, compile=True),
                (torch.randn(nb, *ldm.latent_shape),))
            cases[f"pixel DDPM train step, compiled (batch {dc.train.batch_size})"] = train_step(
                ddpm.net, diffusion_loss(ddpm.net, sde, dc.loss, masked=True, precision=precision, compile=True),
                (x_img[:dc.train.batch_size] * 2 - 1, mask[:dc.train.batch_size]))
        rows.append({name: per_call(fn, args.iters) for name, fn in cases.items()})
    print(f"threads {args.threads}, preset {args.preset}, {args.iters} calls each; torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16('cpu')} "
          f"(precision \"auto\" runs {resolve('auto', 'cpu')})")
    print("| what | fp32 ms | bf16 ms | bf16 speed-up |")
    print("|---|---|---|---|")
    for name in rows[0]:
        a, b = rows[0][name] * 1e3, rows[1][name] * 1e3
        print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f}× |")


if __name__ == "__main__":
    main()
