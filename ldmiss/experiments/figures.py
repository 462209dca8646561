"""Figures 1–4 of the poster from a results store (matplotlib, Agg backend, PNG)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .results import aggregate, label, method_order, per_run  # noqa: E402

COLORS = {"ldmiss": "tab:red", "ldmiss-em": "darkred", "diem-pigdm": "teal", "diem-replacement": "darkturquoise",
          "ambient": "tab:orange", "ambient-replacement": "tab:orange", "ambient-guidance": "gold",
          "ddpm": "tab:blue", "ddpm-replacement": "tab:blue", "ddpm-guidance": "tab:cyan",
          "diffputer": "tab:green", "vae-encoder": "tab:purple", "vae-map": "tab:pink", "mean": "tab:gray",
          "biharmonic": "tab:brown", "neighbours": "tab:olive", "ldmiss-mnar": "salmon", "miwae": "slateblue",
          "notmiwae": "darkslateblue"}


def tile_channels(images: np.ndarray) -> np.ndarray:
    """N×C×H×W with C other than 1 (grey) or 3 (RGB) → N×1×H×(C·(W+1)−1): each channel a grey tile,
    side by side with a 1-pixel gap, so a 2- or 4-channel image is shown whole, not refused."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[:, None]
    n, c, h, w = images.shape
    if c in (1, 3):
        return images
    out = np.ones((n, 1, h, c * (w + 1) - 1), dtype=np.float32)
    for k in range(c):
        out[:, 0, :, k * (w + 1):k * (w + 1) + w] = images[:, k]
    return out


def image_grid(images: np.ndarray, ncol: int = 8) -> np.ndarray:
    """N×C×H×W (or N×H×W) in [0, 1] → one (rows·H)×(ncol·W) array with 1-pixel gaps: grey for one
    channel, (rows·H)×(ncol·W)×3 RGB for three (colour in, colour out), channels side by side for
    any other count."""
    images = tile_channels(images)
    n, c, h, w = images.shape
    images = np.clip(np.moveaxis(images, 1, -1), 0.0, 1.0)  # N×H×W×C
    ncol = max(1, min(ncol, n))
    rows = int(np.ceil(n / ncol))
    out = np.ones((rows * (h + 1) - 1, ncol * (w + 1) - 1, c), dtype=np.float32)
    for i, im in enumerate(images):
        r, col = divmod(i, ncol)
        out[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = im
    return out[..., 0] if c == 1 else out


MISSING_CAPTION = "red/black hatch = missing"
DPI = 110
CAPTION_CHARS_PER_INCH = {7: 17, 8: 15, 9: 13}  # DejaVu Sans at these sizes, with a margin


def panel_inches(images: np.ndarray, ncol: int, least: float) -> float:
    """A panel's width: ``least`` inches, or enough for one screen pixel per image pixel at :data:`DPI`
    (64×64 photos in a 4-wide grid need 2.4 in; MNIST fits the least)."""
    w = tile_channels(images).shape[-1]
    return max(least, min(ncol, len(images)) * (w + 1) / DPI * 1.05)


def set_caption(fig, text: str, fontsize: int = 8) -> None:
    """``text`` as the figure's title, wrapped to the figure's width so no line is cut off."""
    width = fig.get_size_inches()[0]
    per_line = max(20, int(width * CAPTION_CHARS_PER_INCH.get(fontsize, 120 / fontsize)))
    lines = [textwrap.fill(part, per_line) for part in text.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def show_missing(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """N×3×H×W RGB copies of ``images`` (N×C×H×W in [0, 1], any channel count) with the pixels ``mask``
    marks missing (0) drawn as a red/black checkerboard — a pattern no digit or photo shows, where
    a flat grey was indistinguishable from mid-grey content. A pixel is drawn missing when any of
    its channels is (for channel counts other than 1 and 3, per tile)."""
    images, mask = np.asarray(images, np.float32), np.asarray(mask, np.float32)
    if images.shape[1] not in (1, 3):
        images, mask = tile_channels(images), tile_channels(mask)
    rgb = np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images.copy()
    missing = (mask.min(axis=1, keepdims=True) < 0.5)  # N×1×H×W
    h, w = images.shape[2:]
    checker = (np.add.outer(np.arange(h), np.arange(w)) % 2 == 0).astype(np.float32)  # H×W
    hatch = np.stack([checker, np.zeros_like(checker), np.zeros_like(checker)])  # red on black
    return np.where(missing, hatch[None], rgb)


def as_rgb(images: np.ndarray) -> np.ndarray:
    """N×C×H×W → RGB (grey repeated; other channel counts tiled), to sit beside :func:`show_missing`'s panels."""
    images = tile_channels(images)
    return np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images


def show(ax, images: np.ndarray, ncol: int = 4) -> None:
    """Draw a grid of images on ``ax`` in grey or colour, as they are (nearest-neighbour: no blur)."""
    grid = image_grid(images, ncol)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")


def save_grid(images: np.ndarray, path: str | Path, ncol: int = 8, scale: int = 3) -> Path:
    """PNG grid of images in [0, 1] (grey or RGB), enlarged ``scale``× (nearest neighbour) so 28×28
    digits are legible."""
    grid = image_grid(images, ncol)
    big = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    if big.ndim == 2:
        plt.imsave(str(path), big, cmap="gray", vmin=0, vmax=1)
    else:
        plt.imsave(str(path), big)
    return Path(path)


def _lines(ax, rows, key, title, methods):
    for m in methods:
        agg = {k: v for k, v in aggregate(rows, key).items() if k[0] == m}
        if not agg:
            continue
        rates = sorted(r for _, r in agg)
        mean = [agg[(m, r)][0] for r in rates]
        std = [agg[(m, r)][1] for r in rates]
        ax.errorbar(rates, mean, yerr=std, marker="o", capsize=3, label=m, color=COLORS.get(m))
    ax.set_title(title)
    ax.set_xlabel("training missing rate")
    ax.grid(alpha=0.3)


def _metric_figure(rows, panels, suptitle, path, methods):
    panels = [p for p in panels if any(r.get(p[0]) is not None for r in rows)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 4.2 * len(panels)), 3.9), layout="constrained")
    for ax, (key, title) in zip(np.atleast_1d(axes), panels):
        _lines(ax, rows, key, title, methods)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    set_caption(fig, suptitle, 9)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def poster_figure(rows, caption, path):
    """Fig. 5: our Figure 1 and Figure 3 curves (solid, mean ± std over seeds) over the poster's
    values (dashed, read off its plots; see poster.py for what they can and cannot be compared on)."""
    from .poster import FIG1, FIG3
    panels = [("sample_fid", "Fig. 1: sample FID ↓", FIG1), ("sample_is", "Fig. 1: sample IS ↑", FIG1),
              ("impute_mse", "Fig. 3: imputation MSE ↓", FIG3), ("impute_fid", "Fig. 3: imputation FID ↓", FIG3),
              ("impute_is", "Fig. 3: imputation IS ↑", FIG3)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 4.0), layout="constrained")
    for ax, (key, title, poster) in zip(axes, panels):
        ours = aggregate(rows, key)
        for m, series in poster[key].items():
            color = COLORS.get(m)
            pts = sorted((r, v) for (mm, r), v in ours.items() if mm == m)
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts], yerr=[p[1][1] for p in pts], marker="o",
                            capsize=3, color=color, label=f"{m} (ours)")
            rates = sorted(series)
            ax.plot(rates, [series[r] for r in rates], ls="--", marker="x", color=color, alpha=0.6,
                    label=f"{m} (poster)")
        if key in ("sample_fid", "impute_fid"):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training missing rate")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    axes[2].legend(fontsize=6)
    set_caption(fig, "Fig. 5 — ours (solid) over the poster's values (dashed, approximate; the poster's feature "
                f"network and MSE scale are not stated)\n{caption}", 8)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _examples(runs):
    """Example images per run; runs without them (a committed results folder keeps no images) are skipped."""
    return {(r["method"], r["train_rate"], r["seed"]): np.load(Path(r["_dir"]) / "examples.npz") for r in runs
            if (Path(r["_dir"]) / "examples.npz").is_file()}


def make_figures(root: Path, runs: list[dict], rows: list[dict], caption: str, poster: bool = True) -> list[Path]:
    """Figures 1–4 of one condition's runs into ``root``; ``poster``: also Fig. 5 (ours over the
    poster's values), which only MNIST under MCAR can be laid over."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    methods = method_order(rows)
    paths = [
        _metric_figure(rows, [("sample_fid", "FID ↓"), ("sample_is", "IS ↑")],
                       f"Fig. 1 — sample quality vs training missing rate\n{caption}", root / "fig1_sample_quality.png",
                       [m for m in method_order(per_run(rows)) if any(r["method"] == m and r["sample_fid"] is not None
                                                                      for r in per_run(rows))]),
        _metric_figure(rows, [("impute_mse", "MSE (missing pixels) ↓"), ("impute_fid", "FID ↓"), ("impute_is", "IS ↑")],
                       f"Fig. 3 — imputation quality vs training missing rate\n{caption}", root / "fig3_imputation.png",
                       methods),
    ]
    paths = [p for p in paths if p is not None]
    if poster and any(r.get("sample_fid") is not None for r in rows):
        paths.append(poster_figure(rows, caption, root / "fig5_vs_poster.png"))
    ex = _examples(runs)
    if not ex:
        return paths
    seed = min(r["seed"] for r in runs)
    rates = sorted({r["train_rate"] for r in runs})
    gen = [m for m in sorted({r["method"] for r in runs}) if any("samples" in ex[k] for k in ex if k[0] == m)]
    if gen:
        first = next(e["samples"][:16] for e in ex.values() if "samples" in e)
        side = panel_inches(first, 4, 2.6)
        fig, axes = plt.subplots(len(gen), len(rates), figsize=(max(6.0, side * len(rates)), side * len(gen) + 1.0),
                                 squeeze=False, layout="constrained")
        for i, m in enumerate(gen):
            for j, r in enumerate(rates):
                ax = axes[i][j]
                ax.axis("off")
                e = ex.get((m, r, seed))
                if e is not None and "samples" in e:
                    show(ax, e["samples"][:16])
                ax.set_title(f"{m}, r = {r:g}", fontsize=8)
        set_caption(fig, f"Fig. 2 — unconditional samples (seed {seed})\n{caption}", 7)
        fig.savefig(root / "fig2_samples.png", dpi=DPI)
        plt.close(fig)
        paths.append(root / "fig2_samples.png")
    for r in rates:
        any_e = next((ex[k] for k in ex if k[1] == r and k[2] == seed), None)
        if any_e is None:
            continue
        panels = [("observed", show_missing(any_e["test_true"][:16], any_e["test_mask"][:16]))]
        for (m, rr, s), e in sorted(ex.items()):
            if rr == r and s == seed:
                modes = [k[len("impute_"):] for k in e.files if k.startswith("impute_")]
                panels += [(label(m, mode, len(modes)), e[f"impute_{mode}"]) for mode in modes]
        panels.append(("ground truth", any_e["test_true"]))
        side = panel_inches(any_e["test_true"][:16], 4, 1.9)
        fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, side * len(panels)), side + 1.1), squeeze=False,
                                 layout="constrained")
        for ax, (name, imgs) in zip(axes[0], panels):
            show(ax, imgs[:16])
            ax.set_title(name, fontsize=7)
            ax.axis("off")
        set_caption(fig, f"Fig. 4 — imputations, trained at r = {r:g}, seed {seed} ({MISSING_CAPTION})\n{caption}", 7)
        path = root / f"fig4_imputations_rate{r:.2f}.png"
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        paths.append(path)
    return paths
