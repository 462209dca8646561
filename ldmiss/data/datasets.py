"""Dataset registry: everything that is dataset-specific, in one entry per dataset.

An entry (:class:`DatasetInfo`) says how to obtain the data (a named dataset's fetch chain in
sources.py, or the user's own folder/.npz in user.py), its image shape C×H×W, the decoder
likelihood that suits it, and the metric network for its FID/IS (metrics/features.py; None = no
FID/IS, the report scores pixels only). :func:`dataset_info` resolves a name or a path, with the
user-data options (``size``, ``aspect``, ``alpha``, ``test_fraction``, ``split_seed``), to an entry;
:func:`load_dataset` returns one split of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UsageError
from .photos import load_photos
from .sources import fetch_dataset, load_verified
from .user import DatasetError, fingerprint, is_user_dataset, load_user


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # uint8 0–255 or float32 in [0, 1], N×C×H×W (missing pixels, if any, hold 0)
    labels: np.ndarray  # int64, N
    obs_mask: np.ndarray | None = None  # the data's own missing pixels (1 = observed); None = complete

    def __len__(self) -> int:
        return len(self.images)

    def float_images(self) -> np.ndarray:
        """float32 in [0, 1]."""
        if self.images.dtype == np.uint8:
            return self.images.astype(np.float32) / 255.0
        return self.images.astype(np.float32, copy=False)


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # registry name, or the path as given
    title: str
    shape: tuple[int, int, int]  # C×H×W
    likelihood: str  # the decoder likelihood that suits it (nets/likelihoods.py)
    metric_network: str | None  # key of metrics.features.METRIC_NETWORKS; None = no FID/IS
    load: Callable[..., Dataset]  # load(split, data_dir) → Dataset
    fetchable: bool = False  # has a download chain (`ldmiss fetch-data --dataset NAME`)


def _load_idx_dataset(name: str, split: str, data_dir, **fetch_kwargs) -> Dataset:
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise UsageError(f"split must be 'train' or 'test', not {split!r}")
    cache = fetch_dataset(name, data_dir, **fetch_kwargs)
    images = load_verified(cache, f"{prefix}-images-idx3-ubyte")
    labels = load_verified(cache, f"{prefix}-labels-idx1-ubyte")
    return Dataset(images=np.ascontiguousarray(images[:, None]), labels=labels.astype(np.int64))


def load_mnist(split: str = "train", data_dir: str | Path | None = None, **fetch_kwargs) -> Dataset:
    """MNIST ``train`` (60k) or ``test`` (10k) as uint8 N×1×28×28, fetched and verified on first use."""
    return _load_idx_dataset("mnist", split, data_dir, **fetch_kwargs)


def load_fashion_mnist(split: str = "train", data_dir: str | Path | None = None, **fetch_kwargs) -> Dataset:
    """Fashion-MNIST ``train`` (60k) or ``test`` (10k) as uint8 N×1×28×28 (data/sources.py for its chain)."""
    return _load_idx_dataset("fashion-mnist", split, data_dir, **fetch_kwargs)


REGISTRY: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", "MNIST", (1, 28, 28), "bernoulli", "mnist", load_mnist, fetchable=True),
    "fashion-mnist": DatasetInfo("fashion-mnist", "Fashion-MNIST", (1, 28, 28), "bernoulli", "fashion-mnist",
                                 load_fashion_mnist, fetchable=True),
    "photos": DatasetInfo("photos", "photo patches (scikit-image's photographs, 32×32 RGB)", (3, 32, 32), "gaussian",
                          None, load_photos),
}
# The registry's loaders under the name they had in 0.1.0 (public API).
DATASETS: dict[str, Callable[..., Dataset]] = {k: v.load for k, v in REGISTRY.items()}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add a named dataset (docs/extending.md): ``--dataset NAME``, presets and the protocol then know it."""
    REGISTRY[info.name] = info
    DATASETS[info.name] = info.load
    return info

USER_OPTIONS = {"size": None, "test_fraction": 0.2, "split_seed": 0, "alpha": "missing", "aspect": "stretch"}


def suggest_likelihood(images: np.ndarray, observed: np.ndarray | None = None) -> str:
    """``bernoulli`` for near-binary data (≥ 90% of the *observed* pixels within 0.1 of 0 or 1, like
    MNIST), else ``gaussian`` (grey levels and natural images carry information a Bernoulli mean
    blurs). ``observed`` (1 = observed, broadcastable): missing pixels, stored as 0 or NaN, are not
    counted — the fit's ``vae.likelihood = "auto"`` applies this rule to the same pixels."""
    x = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    keep = ~np.isnan(x)
    if observed is not None:
        keep &= np.broadcast_to(np.asarray(observed) > 0, x.shape)
    x = x[keep]
    if x.size == 0:
        return "bernoulli"
    near = ((x <= 0.1) | (x >= 0.9)).mean()
    return "bernoulli" if near >= 0.9 else "gaussian"


def is_path(name: str) -> bool:
    """The dataset is the user's folder or .npz (a registry name always means the named dataset)."""
    return name not in REGISTRY and is_user_dataset(name)


def check_options(name: str, options: dict | None) -> dict:
    """The user-data options with their defaults filled in ({} for a named dataset, which takes none)."""
    options = dict(options or {})
    if options and not is_path(name):
        raise DatasetError(f"dataset {name!r} takes no options (got {sorted(options)}); they apply to a folder or .npz")
    unknown = sorted(set(options) - set(USER_OPTIONS))
    if unknown:
        raise DatasetError(f"unknown dataset option(s) {unknown}; valid: {sorted(USER_OPTIONS)}")
    return {**USER_OPTIONS, **options} if is_path(name) else {}


def dataset_info(name: str, options: dict | None = None) -> DatasetInfo:
    """The registry entry of a named dataset, or one made for a folder / .npz path (read once to
    learn its shape and the likelihood that suits it)."""
    opts = check_options(name, options)
    if not is_path(name):
        if name not in REGISTRY:
            raise UsageError(f"unknown dataset {name!r}; choose from {sorted(REGISTRY)} or give a folder of images "
                             f"or an .npz file")
        return REGISTRY[name]
    return _user_info(name, options_key(opts), fingerprint(Path(name).expanduser()))


def options_key(options: dict | None) -> tuple:
    """Dataset options as a hashable key (lists → tuples), for caches keyed by them."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (options or {}).items()))


@lru_cache(maxsize=8)
def _user_info(name: str, options: tuple, data_fingerprint: str) -> DatasetInfo:
    """The entry made for a folder / .npz, read once per (path, options, content on disk): every
    caller (validation, each run's settings, the reference) asks for it."""
    opts = dict(options)
    images, _, natural = load_user(name, "train", **opts)

    def load(split: str, data_dir=None) -> Dataset:
        if split not in ("train", "test"):
            raise UsageError(f"split must be 'train' or 'test', not {split!r}")
        x, y, m = load_user(name, split, **opts)
        return Dataset(images=x, labels=y, obs_mask=m)
    return DatasetInfo(name, Path(name).name or name, tuple(images.shape[1:]), suggest_likelihood(images, natural), None,
                       load)


def load_dataset(name: str, split: str, data_dir=None, options: dict | None = None) -> Dataset:
    return dataset_info(name, options).load(split, data_dir=data_dir)
