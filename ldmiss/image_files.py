"""Image files in, image files out: what ``ldmiss impute MODEL --input FILES_OR_FOLDERS --out FOLDER``
reads and writes, so a practitioner never has to build an array.

**Which pixels are missing.** An image file has no NaN, so a missing pixel must be marked; three
marks are read, and a pixel is missing where any of them says so:

- **transparency** (the default, nothing to pass): alpha 0 is missing, as for training folders;
- **a mask file** per image (``--mask FOLDER`` or files): the image of the same name (any image
  suffix, ``.mask`` allowed before it: ``scan1.png`` ↔ ``scan1.png`` or ``scan1.mask.png``), of the
  same size; black (< 50% of full scale) is missing, anything brighter is observed — the
  convention of the ``obs_mask`` arrays (1 = observed);
- **a colour key** (``--missing-colour 255,0,255`` or a grey level ``0``): pixels of exactly that
  8-bit colour are missing (only exact matches: JPEG's compression blurs a key colour, so keys
  need a lossless format).

Float TIFFs may also hold NaN. A file with no missing pixel under any mark is imputed as is (its
output equals its input), and the command says how many files had none, since that is usually a
forgotten mask.

**Checked against the model.** Every image must have the model's height and width (named in the
error, with the fix). A grayscale file fed to a colour model is repeated into R = G = B; a colour
file fed to a grayscale model is accepted only when its channels are equal (a grey image saved as
RGB), and refused otherwise rather than silently converted.

**Written.** ``FOLDER/<name>.png`` per input (8-bit, the input's relative path kept), with several
draws also ``FOLDER/<name>.std.png`` (the per-pixel standard deviation of the draws, grey, 255 =
std ≥ 0.25 of the full scale, the largest channel's where colour), and ``FOLDER/imputed.npz`` with
the full-precision arrays (``imputed``, ``obs_mask``, ``names``; ``std``, ``draws`` with several
draws).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data.user import IMAGE_SUFFIXES, decode_image
from .errors import UsageError

STD_FULL_SCALE = 0.25  # a std map's white: a draw-to-draw std this large or larger
MASK_THRESHOLD = 0.5  # a mask image's pixel below half its full scale marks a missing pixel


class ImageFileError(UsageError):
    """An image, mask or colour key that cannot be used for imputation (names the file and the fix)."""


def is_image_path(path: str | Path) -> bool:
    """A folder, or a file with an image suffix (arrays are .npy/.npz)."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES


def collect_images(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, name to write it under) for every image among ``inputs``: files as given (by their file
    name), folders searched recursively (their relative paths kept, so two ``a.png`` in two
    subfolders stay apart). Mask-looking files (``*.mask.*``) inside an input folder are skipped."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not p.stem.endswith(".mask"))
            if not files:
                raise ImageFileError(f"--input {path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it or its subfolders")
            found += [(p, p.relative_to(path)) for p in files]
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ImageFileError(f"--input {path}: not an image file ({', '.join(IMAGE_SUFFIXES)}); arrays go "
                                     "alone as one .npy/.npz")
            found.append((path, Path(path.name)))
        else:
            raise ImageFileError(f"--input {path} does not exist")
    names = [str(n.with_suffix("")) for _, n in found]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ImageFileError(f"--input: two images would be written as {dup}.png; give them different names")
    return found


def parse_colour(text: str | None, channels: int) -> np.ndarray | None:
    """``"255,0,255"`` or ``"0"`` → the key as 8-bit levels per channel (a grey level fits any model)."""
    if text is None:
        return None
    try:
        levels = [int(v) for v in text.split(",")]
    except ValueError:
        raise ImageFileError(f"--missing-colour {text!r}: give 8-bit levels, R,G,B (e.g. 255,0,255) or one grey "
                             "level") from None
    if len(levels) not in (1, 3) or not all(0 <= v <= 255 for v in levels):
        raise ImageFileError(f"--missing-colour {text!r}: give three levels R,G,B or one grey level, each 0–255")
    if len(levels) == 3 and channels == 1 and len(set(levels)) > 1:
        raise ImageFileError(f"--missing-colour {text!r} is a colour, but the model is grayscale; give one grey level")
    return np.array(levels * (channels if len(levels) == 1 else 1), dtype=np.float32) / 255.0


def _open(path: Path, alpha: str = "missing") -> tuple[np.ndarray, np.ndarray | None]:
    """(H×W×C float32 in [0, 1], observed H×W bool or None) of one file, by the training reader's rules."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.load()
            values, observed = decode_image(path, im, im.format, alpha)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise ImageFileError(f"{path}: cannot be read as an image ({exc})") from exc
    if values.dtype == np.uint8:
        values = values.astype(np.float32) / 255.0
    return values.astype(np.float32), observed


def _mask_file(masks: list[Path], image: Path, name: Path) -> Path | None:
    """The mask of ``image``: in a mask folder, the same relative name (any image suffix, optional
    ``.mask``); among mask files, the one whose stem (less ``.mask``) is the image's."""
    stem = name.with_suffix("")
    for m in masks:
        if m.is_dir():
            for suffix in IMAGE_SUFFIXES:
                for candidate in (m / f"{stem}{suffix}", m / f"{stem}.mask{suffix}"):
                    if candidate.is_file() and candidate.resolve() != image.resolve():
                        return candidate
        elif m.stem.removesuffix(".mask") == stem.name:
            return m
    return None


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Observed H×W bool from a mask image: brighter than half scale = observed (any channel count)."""
    values, alpha_seen = _open(path, alpha="missing")
    if values.shape[:2] != shape:
        raise ImageFileError(f"mask {path}: size {values.shape[0]}×{values.shape[1]} differs from its image's "
                             f"{shape[0]}×{shape[1]}")
    observed = values.max(axis=-1) >= MASK_THRESHOLD
    return observed if alpha_seen is None else observed & alpha_seen


def read_for_model(inputs: list[str], image_shape: tuple[int, int, int], masks: list[str] | None = None,
                   missing_colour: str | None = None) -> tuple[np.ndarray, np.ndarray, list[Path], int]:
    """(images N×C×H×W float32 in [0, 1] with missing pixels 0, obs_mask N×C×H×W uint8, names, how
    many files had no missing pixel) from image files, checked against the model's C×H×W."""
    c, h, w = image_shape
    key = parse_colour(missing_colour, c)
    mask_paths = [Path(m).expanduser() for m in masks or []]
    for m in mask_paths:
        if not m.exists():
            raise ImageFileError(f"--mask {m} does not exist")
    images, observed_all, names, complete = [], [], [], 0
    for path, name in collect_images(inputs):
        values, observed = _open(path)
        if values.shape[:2] != (h, w):
            raise ImageFileError(f"{path}: {values.shape[0]}×{values.shape[1]} pixels, but the model takes {h}×{w}; "
                                 f"resize (or crop) the images to {h}×{w}, or train a model at their size")
        if values.shape[-1] == 1 and c == 3:
            values = np.repeat(values, 3, axis=-1)
        elif values.shape[-1] == 3 and c == 1:
            if np.abs(values - values[..., :1]).max() > 1.0 / 255:
                raise ImageFileError(f"{path} is a colour image, but the model is grayscale; convert it to grayscale "
                                     f"first (e.g. Pillow's .convert('L')) if that is what you mean")
            values = values[..., :1]
        keep = np.ones((h, w), bool) if observed is None else observed
        if mask_paths:
            mask_file = _mask_file(mask_paths, path, name)
            if mask_file is None:
                raise ImageFileError(f"{path}: no mask for it under --mask ({', '.join(map(str, mask_paths))}); "
                                     f"expected {name.with_suffix('')}.png (or .mask.png, any image suffix)")
            keep &= read_mask(mask_file, (h, w))
        if key is not None:
            keep &= ~np.all(np.abs(np.rint(values * 255) / 255 - key) < 0.5 / 255, axis=-1)
        complete += bool(keep.all())
        images.append(np.where(keep[..., None], values, 0.0).transpose(2, 0, 1))
        observed_all.append(np.broadcast_to(keep[None], (c, h, w)))
        names.append(name)
    return (np.stack(images).astype(np.float32), np.stack(observed_all).astype(np.uint8), names, complete)


def _to_8bit(image: np.ndarray) -> np.ndarray:
    """C×H×W in [0, 1] → H×W (grey) or H×W×3 uint8."""
    a = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def write_outputs(out: str | Path, names: list[Path], imputed: np.ndarray, obs_mask: np.ndarray,
                  std: np.ndarray | None = None, draws: np.ndarray | None = None) -> list[Path]:
    """PNG per image (and a std map per image when there are several draws), and ``imputed.npz``."""
    from PIL import Image
    out = Path(out)
    written = []
    for i, name in enumerate(names):
        target = out / name.with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_to_8bit(imputed[i])).save(target)
        written.append(target)
        if std is not None:
            spread = np.clip(std[i].max(axis=0) / STD_FULL_SCALE, 0, 1)
            Image.fromarray(np.rint(spread * 255).astype(np.uint8)).save(out / name.with_suffix(".std.png"))
    arrays = {"imputed": imputed.astype(np.float32), "obs_mask": obs_mask.astype(np.uint8),
              "names": np.array([str(n) for n in names])}
    if std is not None:
        arrays.update(std=std.astype(np.float32), draws=draws.astype(np.float32))
    np.savez_compressed(out / "imputed.npz", **arrays)
    return written
