"""The poster's Figures 1 and 3 as numbers, for the overlay figure (fig5) and the README's claims.

Read off the published plots of "Latent Diffusion for Missing Data" (Estad, Peis, Frellsen): three
seeds, approximate (about ±5 at low FID, ±0.1 IS, ±0.01 MSE); where a range was read, its middle is
given. The poster does not say which feature network its FID/IS use nor the scale of its MSE, so
compare shapes and orderings (and IS, bounded by 10 for any MNIST classifier) more than absolute FID.
Keys are our method labels; values map training missing rate → value.
"""
from __future__ import annotations

RATES_FIG1 = (0.0, 0.1, 0.3, 0.5, 0.6, 0.8)
RATES_FIG3 = (0.1, 0.3, 0.5, 0.6, 0.8)


def _series(rates, values):
    return dict(zip(rates, values))


FIG1 = {
    "sample_fid": {"ldmiss": _series(RATES_FIG1, (12.5, 15, 14, 17, 30, 88)),
                   "ddpm": _series(RATES_FIG1, (17.5, 20, 33, 79, 130, 300)),
                   "diffputer": _series(RATES_FIG1, (20, 10, 12, 15, 105, 680))},
    "sample_is": {"ldmiss": _series(RATES_FIG1, (9.15, 9.05, 9.1, 9.05, 8.8, 7.8)),
                  "ddpm": _series(RATES_FIG1, (8.9, 8.85, 8.55, 7.8, 7.15, 4.2)),
                  "diffputer": _series(RATES_FIG1, (8.85, 9.05, 9.0, 8.95, 7.25, 1.9))},
}

FIG3 = {
    "impute_mse": {"ldmiss": _series(RATES_FIG3, (0.03, 0.03, 0.03, 0.03, 0.035)),
                   "ddpm-guidance": _series(RATES_FIG3, (0.06, 0.094, 0.17, 0.20, 0.38)),
                   "ddpm-replacement": _series(RATES_FIG3, (0.095, 0.11, 0.15, 0.155, 0.30)),
                   "diffputer": _series(RATES_FIG3, (0.044, 0.042, 0.049, 0.08, 0.177)),
                   "vae-encoder": _series(RATES_FIG3, (0.164, 0.056, 0.02, 0.025, 0.16))},
    "impute_fid": {"ldmiss": _series(RATES_FIG3, (2, 2, 2, 2, 2.5)),
                   "ddpm-guidance": _series(RATES_FIG3, (2, 8, 25, 33, 79)),
                   "ddpm-replacement": _series(RATES_FIG3, (2, 7, 17, 19, 39)),
                   "diffputer": _series(RATES_FIG3, (41, 38, 50, 93, 231)),
                   "vae-encoder": _series(RATES_FIG3, (28, 12, 5, 5, 85))},
    "impute_is": {"ldmiss": _series(RATES_FIG3, (9.7, 9.7, 9.7, 9.7, 9.7)),
                  "ddpm-guidance": _series(RATES_FIG3, (9.7, 9.6, 9.4, 9.3, 8.4)),
                  "ddpm-replacement": _series(RATES_FIG3, (9.45, 9.4, 9.3, 9.3, 8.95)),
                  "diffputer": _series(RATES_FIG3, (9.3, 9.3, 9.3, 8.9, 6.8)),
                  "vae-encoder": _series(RATES_FIG3, (9.2, 9.65, 9.7, 9.65, 7.85))},
}
