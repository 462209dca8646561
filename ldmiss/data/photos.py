"""``photos``: 32×32 RGB patches of real photographs, the natural-image case of the toolkit.

Why these photos: they are real, freely licensed photographs that a dependency already installs —
scikit-image ships them inside its wheel (``skimage/data``: NASA's astronaut portrait, public
domain; Chelsea the cat, coffee, the rocket launch and the immunohistochemistry slide, CC0 or public
domain per skimage's ``data/README.txt``; the Middlebury motorcycle, free for research) — so the
dataset is reachable wherever the package registries are, with nothing bundled here and nothing
downloaded. Each file is checked against its SHA-256 before use.

Train and test are **different photographs** (the test patches come from images the model never
saw, as a user's new photo would): train = astronaut, coffee, motorcycle (left view), IHC slide
(16,077 overlapping patches, stride 8); test = chelsea, rocket (1,434 patches, stride 16). Patches
are not filtered; a few are nearly flat (sky, background), as in a user's folder.

The data is small beside MNIST and has no metric network, so runs on it are scored by MSE, PSNR
and SSIM on the missing pixels, like any user folder.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from .sources import DataUnavailable

PATCH = 32
TRAIN = {"astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
         "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
         "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
         "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"}
TEST = {"chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"}
STRIDE = {"train": 8, "test": 16}


def _candidates(data_dir) -> list[Path]:
    """Where the photos are looked for: ``data_dir`` if given, then scikit-image's installed data."""
    places = [Path(data_dir).expanduser()] if data_dir else []
    try:
        import skimage
        places.append(Path(skimage.__file__).parent / "data")
    except ImportError:
        pass
    return places


def photo_path(name: str, sha256: str, data_dir=None) -> Path:
    """The verified file ``name``: the first place that holds it with the recorded SHA-256."""
    tried = []
    for place in _candidates(data_dir):
        path = place / name
        if not path.is_file():
            tried.append(f"{path}: missing")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest == sha256:
            return path
        tried.append(f"{path}: SHA-256 {digest[:12]}… is not the recorded {sha256[:12]}…")
    if not tried:
        tried.append("scikit-image is not installed (pip install scikit-image)")
    raise DataUnavailable(f"photo {name} not found; tried:\n  " + "\n  ".join(tried)
                          + "\n(the photos ship inside scikit-image's wheel; --data-dir may name a folder holding them)")


def patches(image: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Every size×size window of an H×W×C image at ``stride`` (row-major), as N×C×size×size."""
    h, w = image.shape[:2]
    out = [image[i:i + size, j:j + size] for i in range(0, h - size + 1, stride) for j in range(0, w - size + 1, stride)]
    return np.ascontiguousarray(np.stack(out).transpose(0, 3, 1, 2))


@lru_cache(maxsize=4)
def _load(split: str, data_dir) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    files = TRAIN if split == "train" else TEST
    images, labels = [], []
    for k, (name, sha) in enumerate(files.items()):
        with Image.open(photo_path(name, sha, data_dir)) as im:
            rgb = np.asarray(im.convert("RGB"))
        p = patches(rgb, PATCH, STRIDE[split])
        images.append(p)
        labels.append(np.full(len(p), k, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def load_photos(split: str = "train", data_dir=None):
    """``train`` or ``test`` patches as uint8 N×3×32×32 (labels: the source photo's index)."""
    from ..errors import UsageError
    from .datasets import Dataset
    if split not in ("train", "test"):
        raise UsageError(f"split must be 'train' or 'test', not {split!r}")
    images, labels = _load(split, None if data_dir is None else str(data_dir))
    return Dataset(images=images, labels=labels)
