"""The user's own data as a dataset: a folder of image files or an ``.npz`` of arrays.

- A **folder** of PNG/JPEG/BMP/TIFF/WebP files (searched recursively; an immediate subfolder name is
  the class label, like torchvision's ImageFolder), read with Pillow as grayscale when every file
  is grayscale and as RGB otherwise; every image must have one size, or ``size`` (H, W) resizes them
  all. An unreadable file or a size that differs is an error naming the file.
- An **``.npz``** holding the images under ``x`` (or ``images``): N×H×W or N×C×H×W, uint8 0–255 or
  float in [0, 1], NaN = missing; optionally ``obs_mask`` (1 = observed) and labels ``y``.

Either is split into train and test by a seeded permutation (``test_fraction``, ``split_seed``),
so a split is a property of the data and its options, never of a run. Missing pixels the data
already has are its *natural* mask, carried beside the images.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
NPZ_IMAGE_KEYS = ("x", "images")


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


def read_folder(folder: Path, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N×C×H×W, int64 labels) from a folder of images."""
    from PIL import Image, UnidentifiedImageError

    files = _image_files(folder)
    opened = []
    for path in files:
        try:
            with Image.open(path) as im:
                im.load()
                opened.append((path, im.copy()))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot be read as an image ({exc})") from exc
    gray = all(im.mode in ("1", "L", "I", "I;16", "F", "LA") for _, im in opened)
    mode = "L" if gray else "RGB"
    arrays, first = [], None
    for path, im in opened:
        if im.mode in ("RGBA", "LA", "P", "PA"):  # transparent = black, like the zero fill elsewhere
            im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im.convert("RGBA"))
        im = im.convert(mode)
        if size is not None:
            im = im.resize((size[1], size[0]), Image.BICUBIC)
        a = np.asarray(im, dtype=np.uint8)
        a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
        if first is None:
            first = (path, a.shape)
        elif a.shape != first[1]:
            raise DatasetError(f"{path}: image size {a.shape[1]}×{a.shape[2]} differs from {first[0].name}'s "
                               f"{first[1][1]}×{first[1][2]}; resize them to one size, or pass a size "
                               f"(--image-size H W, dataset_options.size) to resize on reading")
        arrays.append(a)
    images = np.stack(arrays)
    classes = sorted({p.parent.name for p in files if p.parent != folder})
    if classes and all(p.parent != folder for p in files):
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[p.parent.name] for p in files], dtype=np.int64)
    else:
        labels = np.zeros(len(files), dtype=np.int64)
    return images, labels


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
def _read(path: str, size: tuple[int, int] | None, data_fingerprint: str):
    p = Path(path)
    if p.is_dir():
        images, labels = read_folder(p, size)
        return images, labels, None
    if size is not None:
        raise DatasetError(f"{p}: a size (resize) applies to folders of images, not to .npz arrays")
    return read_npz(p)


def load_user(path: str, split: str, size=None, test_fraction: float = 0.2, split_seed: int = 0):
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
    images, labels, natural = _read(str(p.resolve()), size, fingerprint(p))
    n = len(images)
    n_test = max(1, int(round(test_fraction * n)))
    if n - n_test < 1:
        raise DatasetError(f"{path}: {n} image(s) is too few to split into train and test")
    order = np.random.default_rng(split_seed).permutation(n)
    idx = np.sort(order[:n_test] if split == "test" else order[n_test:])
    return images[idx], labels[idx], (None if natural is None else natural[idx])
