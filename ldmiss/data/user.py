"""The user's own data as a dataset: a folder of image files or an ``.npz`` of arrays.

- A **folder** of PNG/JPEG/BMP/TIFF/WebP files (searched recursively; an immediate subfolder name is
  the class label, like torchvision's ImageFolder), read with Pillow. Every Pillow mode is brought
  to [0, 1] by the range its format defines (8-bit modes / 255, 16-bit / 65535, float as is if
  already in [0, 1]) or refused with one line naming the file and its mode (:func:`decode_image`,
  and the table in docs/data.md). The folder is grayscale when every file is, RGB otherwise.
  Transparency is, by default, missingness: a pixel with alpha 0 is missing (``alpha =
  "missing"``), and becomes part of the data's natural mask; ``alpha = "black" | "white"``
  composites on that colour instead. Every image must have one size, or ``size`` (H, W) resizes them
  all (stretching, with a warning when that changes an aspect ratio, or ``aspect = "crop"`` to
  centre-crop to H:W first). An unreadable file or a size that differs is an error naming the file.
- An **``.npz``** holding the images under ``x`` (or ``images``): N×H×W or N×C×H×W, with the dtype
  rules of :func:`ldmiss.inputs.to_unit_range` (uint8 / 255, uint16 / 65535, bool, float in [0, 1];
  NaN = missing); optionally ``obs_mask`` (1 = observed) and labels ``y``.

Either is split into train and test by a seeded permutation (``test_fraction``, ``split_seed``),
so a split is a property of the data and its options, never of a run. Missing pixels the data
already has are its *natural* mask, carried beside the images.
"""
from __future__ import annotations

import hashlib
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
NPZ_IMAGE_KEYS = ("x", "images")
ALPHA_CHOICES = ("missing", "black", "white")  # what a transparent pixel is (the first is the default)
ASPECT_CHOICES = ("stretch", "crop")  # how ``size`` treats an image of another aspect ratio

# Pillow modes by how they are read (docs/data.md's table says the same to users).
GRAY_8BIT = ("1", "L", "LA", "La")  # → L (bilevel 0/1 → 0/255), alpha where there is one
COLOUR_8BIT = ("RGB", "RGBX", "CMYK", "YCbCr", "HSV")  # → RGB by Pillow's conversion
ALPHA_8BIT = ("RGBA", "RGBa")  # → RGBA (premultiplied RGBa un-premultiplied by Pillow)
PALETTE = ("P", "PA")  # → the palette's colours: RGB, or L when every colour used is a grey
GRAY_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")  # → / 65535
DARK_16BIT = 4095  # a folder whose 16-bit images never exceed this is likely 12-bit data: say so


class DatasetError(UsageError):
    """User data that cannot be read as a dataset (names the file and what is wrong)."""


def is_user_dataset(name: str) -> bool:
    """A dataset name that is a path: a folder or an .npz file (named datasets are plain words)."""
    return "/" in name or name.endswith(".npz") or Path(name).expanduser().is_dir()


def _image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) found in it or its subfolders")
    return files


def _split_alpha(a: np.ndarray, has_alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    a = a[..., None] if a.ndim == 2 else a
    return (a[..., :-1], a[..., -1]) if has_alpha else (a, None)


def decode_image(path, im, fmt: str | None = None, alpha: str = "missing") -> tuple[np.ndarray, np.ndarray | None]:
    """(H×W×C pixels, observed H×W bool or None = every pixel) of one opened Pillow image.

    The pixels are uint8 0–255 for the 8-bit modes (kept as bytes: a folder of them is stored as
    compactly as MNIST) and float32 in [0, 1] for deeper ones; C is 1 for grey and 3 for colour.
    Pillow's own ``convert("L")`` clips 16-bit values to 255 and truncates floats to 0, so deep
    modes are scaled here from their arrays instead. ``fmt`` is the file's format (``im.format``,
    lost by ``copy()``): Pillow before 10 opens 16-bit PNGs as mode ``I``, and a PNG cannot hold
    more than 16 bits, so ``I`` from a PNG is 16-bit while ``I`` from a TIFF is a 32-bit integer
    with no white level. ``alpha`` says what transparency means: ``missing`` (alpha 0 = a missing
    pixel, any other alpha = observed with its stored colour), ``black`` or ``white`` (composited).
    """
    mode = im.mode
    if mode in GRAY_16BIT or (mode == "I" and fmt == "PNG"):
        a = np.asarray(im)
        if a.min() < 0 or a.max() > 65535:  # pragma: no cover - Pillow's PNG reader cannot produce this
            raise DatasetError(f"{path}: mode {mode} holds values {a.min()}–{a.max()} outside 16 bits")
        return (a.astype(np.float32) / 65535.0)[..., None], None
    if mode == "I":
        a = np.asarray(im)
        raise DatasetError(f"{path}: mode I (32-bit integer, values {a.min()}–{a.max()}) has no white level to scale "
                           f"by; save it as 16-bit grayscale (0–65535), 8-bit, or float (mode F) in [0, 1]")
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        if np.isinf(a).any():
            raise DatasetError(f"{path}: mode F (float) holds ±inf; mark missing pixels with NaN instead")
        nan = np.isnan(a)
        finite = a[~nan]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise DatasetError(f"{path}: mode F (float) must hold values in [0, 1], found {finite.min():.4g} to "
                               f"{finite.max():.4g}; save it rescaled to [0, 1] (divide by its full scale), or as "
                               f"8- or 16-bit integers")
        return np.where(nan, 0.0, a).astype(np.float32)[..., None], (~nan if nan.any() else None)
    if mode in GRAY_8BIT:
        has_alpha = mode in ("LA", "La") or "transparency" in im.info  # tRNS: one grey value is transparent
        values, a = _split_alpha(np.asarray(im.convert("LA" if has_alpha else "L")), has_alpha)
    elif mode in PALETTE or mode in COLOUR_8BIT or mode in ALPHA_8BIT:
        has_alpha = mode in ALPHA_8BIT or mode == "PA" or (mode in ("P", "RGB") and "transparency" in im.info)
        values, a = _split_alpha(np.asarray(im.convert("RGBA" if has_alpha else "RGB")), has_alpha)
        if mode in PALETTE and (values == values[..., :1]).all():
            values = values[..., :1]  # a grey palette is a grayscale image
    else:
        hint = " (Lab colour needs colour management to become RGB)" if mode == "LAB" else ""
        raise DatasetError(f"{path}: Pillow mode {mode!r} cannot be read as an image{hint}; save it as 8- or 16-bit "
                           f"grayscale, RGB(A), palette, or float in [0, 1]")
    if a is None:
        return values, None
    if alpha == "missing":
        observed = a > 0
        if observed.all():
            return values, None
        return np.where(observed[..., None], values, 0).astype(np.uint8), observed
    weight = a[..., None].astype(np.float32) / 255.0
    background = 0.0 if alpha == "black" else 255.0
    return np.rint(values * weight + background * (1.0 - weight)).astype(np.uint8), None


def _crop_to_aspect(values: np.ndarray, observed, size: tuple[int, int]):
    """The centred window of the image that has size's aspect ratio (as large as fits)."""
    h, w = values.shape[:2]
    ch, cw = min(h, round(w * size[0] / size[1])), min(w, round(h * size[1] / size[0]))
    top, left = (h - ch) // 2, (w - cw) // 2
    values = values[top:top + ch, left:left + cw]
    return values, (None if observed is None else observed[top:top + ch, left:left + cw])


def _resize(values: np.ndarray, observed, size: tuple[int, int]):
    """Bicubic resize to size (H, W). 8-bit images without missing pixels go through Pillow as
    8-bit, as they always have; others are resized as floats, and with missing pixels as
    normalised convolution — resize(x·m) / resize(m) — so a missing pixel's placeholder never
    bleeds into its neighbours; a resized pixel is observed where most of its support was."""
    from PIL import Image
    if values.shape[:2] == tuple(size):
        return values, observed
    wh = (size[1], size[0])
    if values.dtype == np.uint8 and observed is None:
        out = np.asarray(Image.fromarray(values[..., 0] if values.shape[-1] == 1 else values).resize(wh, Image.BICUBIC))
        return (out[..., None] if out.ndim == 2 else out), None

    def resize(plane: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(plane.astype(np.float32)).resize(wh, Image.BICUBIC), dtype=np.float32)

    x = values.astype(np.float32) / (255.0 if values.dtype == np.uint8 else 1.0)
    if observed is None:
        return np.clip(np.stack([resize(x[..., c]) for c in range(x.shape[-1])], -1), 0, 1), None
    m = observed.astype(np.float32)
    weight = resize(m)
    seen = weight >= 0.5
    out = np.stack([resize(x[..., c] * m) for c in range(x.shape[-1])], -1) / np.maximum(weight, 1e-6)[..., None]
    return np.where(seen[..., None], np.clip(out, 0, 1), 0).astype(np.float32), (None if seen.all() else seen)


def read_folder(folder: Path, size: tuple[int, int] | None = None, alpha: str = "missing",
                aspect: str = "stretch") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(images N×C×H×W — uint8 when every file is 8-bit, else float32 in [0, 1] —, int64 labels,
    natural obs_mask N×C×H×W uint8 or None) from a folder of images."""
    from PIL import Image, UnidentifiedImageError

    files = _image_files(folder)
    decoded, deep_max, stretched = [], [], []
    for path in files:
        try:
            with Image.open(path) as im:
                im.load()
                values, observed = decode_image(path, im, im.format, alpha)
                if im.mode in GRAY_16BIT or (im.mode == "I" and im.format == "PNG"):
                    deep_max.append(int(round(float(values.max()) * 65535)))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(f"{path}: cannot be read as an image ({exc})") from exc
        if size is not None:
            h, w = values.shape[:2]
            if abs(h * size[1] - w * size[0]) > 0.01 * w * size[0]:  # aspect ratios differ by > 1%
                if aspect == "crop":
                    values, observed = _crop_to_aspect(values, observed, size)
                else:
                    stretched.append((path, h, w))
            values, observed = _resize(values, observed, size)
        decoded.append((path, values, observed))
    if stretched:
        path, h, w = stretched[0]
        warnings.warn(f"{folder}: resizing to {size[0]}×{size[1]} stretches {len(stretched)} of {len(files)} image(s) "
                      f"whose aspect ratio differs (e.g. {path.name}, {h}×{w}); set dataset_options.aspect = 'crop' "
                      f"(CLI --image-aspect crop) to centre-crop them to {size[0]}:{size[1]} first", UserWarning,
                      stacklevel=2)
    if deep_max and max(deep_max) <= DARK_16BIT:
        warnings.warn(f"{folder}: its 16-bit images never exceed {max(deep_max)} of 65535, so they read as at most "
                      f"{max(deep_max) / 65535:.3f}; if they hold 12-bit (or fewer) levels, rescale the files to "
                      f"0–65535 (or to 8-bit) so they are not read nearly black", UserWarning, stacklevel=2)
    channels = max(v.shape[-1] for _, v, _ in decoded)
    eight_bit = all(v.dtype == np.uint8 for _, v, _ in decoded)
    arrays, masks, first = [], [], None
    for path, values, observed in decoded:
        if values.shape[-1] < channels:
            values = np.repeat(values, channels, axis=-1)  # grey in a colour folder: R = G = B
        if not eight_bit and values.dtype == np.uint8:
            values = values.astype(np.float32) / 255.0
        a = np.moveaxis(values, -1, 0)
        if first is None:
            first = (path, a.shape)
        elif a.shape != first[1]:
            raise DatasetError(f"{path}: image size {a.shape[1]}×{a.shape[2]} differs from {first[0].name}'s "
                               f"{first[1][1]}×{first[1][2]}; resize them to one size, or pass a size "
                               f"(--image-size H W, dataset_options.size) to resize on reading")
        arrays.append(a)
        masks.append(np.ones(a.shape[1:], bool) if observed is None else observed)
    images = np.stack(arrays)
    natural = None
    if not all(m.all() for m in masks):
        natural = np.ascontiguousarray(np.broadcast_to(np.stack(masks)[:, None], images.shape).astype(np.uint8))
    classes = sorted({p.parent.name for p in files if p.parent != folder})
    if classes and all(p.parent != folder for p in files):
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[p.parent.name] for p in files], dtype=np.int64)
    else:
        labels = np.zeros(len(files), dtype=np.int64)
    return images, labels, natural


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(images uint8 or float32 N×C×H×W with missing pixels 0, labels, natural obs_mask or None)."""
    from ..inputs import InputError, prepare_images

    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DatasetError(f"{path}: cannot be read as .npz ({exc})") from exc
    key = next((k for k in NPZ_IMAGE_KEYS if k in data.files), None)
    if key is None:
        raise DatasetError(f"{path} has no image array {' or '.join(map(repr, NPZ_IMAGE_KEYS))} "
                           f"(found: {', '.join(data.files) or 'none'}); save the images as x=…")
    raw = data[key]
    try:
        x, mask = prepare_images(raw, data["obs_mask"] if "obs_mask" in data.files else None, what=f"{path}:{key}")
    except InputError as exc:
        raise DatasetError(str(exc)) from exc
    labels = data["y"].astype(np.int64).reshape(-1) if "y" in data.files else np.zeros(len(x), dtype=np.int64)
    if len(labels) != len(x):
        raise DatasetError(f"{path}: {len(labels)} labels 'y' for {len(x)} images")
    natural = None if bool(mask.all()) else mask.numpy().astype(np.uint8)
    if raw.dtype == np.uint8 and natural is None:
        return np.ascontiguousarray(raw if raw.ndim == 4 else raw[:, None]), labels, None
    return x.numpy().astype(np.float32), labels, natural


def fingerprint(path: Path) -> str:
    """Identity of the data on disk (names, sizes, mtimes), so an edited folder is re-read."""
    h = hashlib.sha256()
    items = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in items:
        st = p.stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


@lru_cache(maxsize=4)
def _read(path: str, size: tuple[int, int] | None, alpha: str, aspect: str, data_fingerprint: str):
    p = Path(path)
    if p.is_dir():
        return read_folder(p, size, alpha, aspect)
    for name, value, default in (("size (resize)", size, None), ("alpha", alpha, ALPHA_CHOICES[0]),
                                 ("aspect", aspect, ASPECT_CHOICES[0])):
        if value != default:
            raise DatasetError(f"{p}: a {name} option applies to folders of images, not to .npz arrays")
    return read_npz(p)


def load_user(path: str, split: str, size=None, test_fraction: float = 0.2, split_seed: int = 0,
              alpha: str = ALPHA_CHOICES[0], aspect: str = ASPECT_CHOICES[0]):
    """(images, labels, natural obs_mask or None) of one split of the user's data."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"dataset {path!r}: no such folder or .npz file")
    if not (p.is_dir() or p.suffix == ".npz"):
        raise DatasetError(f"dataset {path!r}: expected a folder of images or an .npz file")
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    size = None if size is None else tuple(int(s) for s in size)
    if size is not None and (len(size) != 2 or min(size) < 4):
        raise DatasetError(f"size must be (H, W) with H, W ≥ 4, got {size}")
    if alpha not in ALPHA_CHOICES:
        raise DatasetError(f"alpha must be one of {list(ALPHA_CHOICES)} (what a transparent pixel is), got {alpha!r}")
    if aspect not in ASPECT_CHOICES:
        raise DatasetError(f"aspect must be one of {list(ASPECT_CHOICES)}, got {aspect!r}")
    if aspect != "stretch" and size is None:
        raise DatasetError(f"aspect = {aspect!r} applies when resizing; give a size (--image-size H W) too")
    images, labels, natural = _read(str(p.resolve()), size, alpha, aspect, fingerprint(p))
    n = len(images)
    n_test = max(1, int(round(test_fraction * n)))
    if n - n_test < 1:
        raise DatasetError(f"{path}: {n} image(s) is too few to split into train and test")
    order = np.random.default_rng(split_seed).permutation(n)
    idx = np.sort(order[:n_test] if split == "test" else order[n_test:])
    return images[idx], labels[idx], (None if natural is None else natural[idx])
