"""Throughput of LDMiss versus the pixel DDPM on this machine, with the `quick` preset's networks.

Prints images/s for training (β-VAE and latent prior separately, and LDMiss's combined cost per
training image), unconditional sampling and imputation, and the LDMiss / DDPM ratios.
Nothing is asserted: timings belong here, not in tests.

    python bench/bench.py [--preset quick] [--threads 2] [--n 200] [--train-steps 40]
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from ldmiss.experiments import load_preset
from ldmiss.experiments.protocol import test_data, training_data
from ldmiss.methods import LDMiss, PixelDDPM
from ldmiss.methods.vae_ops import vae_loss
from ldmiss.missing import apply_mask
from ldmiss.training import TrainConfig, train


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def train_rate(model, loss, data, batch, steps):
    cfg = TrainConfig(steps=steps, batch_size=batch, ema_decay=0.999)
    train(model, loss, data, TrainConfig(steps=2, batch_size=batch), torch.Generator().manual_seed(0), progress=False)
    _, sec = timed(lambda: train(model, loss, data, cfg, torch.Generator().manual_seed(0), progress=False))
    return steps * batch / sec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--n", type=int, default=200, help="images sampled / imputed per measurement")
    ap.add_argument("--train-steps", type=int, default=40)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_preset(args.preset)
    cfg.train_size = 2000
    x, m = training_data(cfg, 0.5, 0)
    xt = apply_mask(x, m)
    x_test, m_test = test_data(cfg, 0)
    x_test, m_test = x_test[:args.n], m_test[:args.n]

    ldm = LDMiss(None, device=args.device, **cfg.overrides_for("ldmiss"))
    ddpm = PixelDDPM(None, device=args.device, **cfg.overrides_for("ddpm"))
    for meth in (ldm, ddpm):
        meth.image_shape = (1, 28, 28)
        meth._build(meth.image_shape)
        meth.meta["fitted"] = True
    lc, dc = ldm.config, ddpm.config
    # the training closures the methods use, in each network's configured precision
    vae_ips = train_rate(ldm.vae, vae_loss(ldm.vae, lc.vae), (xt, m), lc.vae.train.batch_size, args.train_steps)
    z = torch.randn(len(x), *ldm.latent_shape)
    prior_ips = train_rate(ldm.prior.net, ldm.prior.training_loss(), (z,), lc.prior.train.batch_size, args.train_steps)
    ddpm_ips = train_rate(ddpm.net, ddpm.training_loss(ddpm.net, masked=True), (xt * 2 - 1, m), dc.train.batch_size,
                          args.train_steps)
    # seconds per training image under the preset's schedule: VAE steps·batch + prior steps·batch
    ldm_train_sec = (lc.vae.train.steps * lc.vae.train.batch_size / vae_ips
                     + lc.prior.train.steps * lc.prior.train.batch_size / prior_ips)
    ddpm_train_sec = dc.train.steps * dc.train.batch_size / ddpm_ips

    rows = []
    _, s_l = timed(lambda: ldm.sample(args.n, progress=False))
    _, s_d = timed(lambda: ddpm.sample(args.n, progress=False))
    _, i_l = timed(lambda: ldm.impute(x_test * m_test, m_test, progress=False))
    _, i_d = timed(lambda: ddpm.impute(x_test * m_test, m_test, mode="replacement", progress=False))
    _, g_d = timed(lambda: ddpm.impute(x_test * m_test, m_test, mode="guidance", progress=False))
    rows.append(("training (img/s, per network)", f"VAE {vae_ips:,.0f} / prior {prior_ips:,.0f}", f"{ddpm_ips:,.0f}", ""))
    rows.append(("training time under the preset's schedule (s)", f"{ldm_train_sec:,.0f}", f"{ddpm_train_sec:,.0f}",
                 f"{ddpm_train_sec / ldm_train_sec:.1f}×"))
    rows.append((f"sampling (img/s, {lc.prior.sampler.steps} / {dc.sampler.steps} steps)", f"{args.n / s_l:,.1f}",
                 f"{args.n / s_d:,.1f}", f"{s_d / s_l:.1f}×"))
    rows.append(("imputation (img/s; LDMiss guidance vs DDPM replacement)", f"{args.n / i_l:,.1f}", f"{args.n / i_d:,.1f}",
                 f"{i_d / i_l:.1f}×"))
    rows.append(("imputation (img/s; guidance vs guidance)", f"{args.n / i_l:,.1f}", f"{args.n / g_d:,.1f}",
                 f"{g_d / i_l:.1f}×"))
    print(f"bench: preset {args.preset}, {args.threads} thread(s), device {ldm.device}, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}; N = {args.n}; precision: β-VAE {lc.vae.precision}, "
          f"prior {lc.prior.precision}, DDPM {dc.precision}")
    print("| measure | LDMiss | DDPM | LDMiss speed-up (DDPM time ÷ LDMiss time) |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
