"""Dataset registry: name → loader returning uint8 images (N×C×H×W) and integer labels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .sources import fetch_dataset, load_verified


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # uint8, N×C×H×W
    labels: np.ndarray  # int64, N

    def __len__(self) -> int:
        return len(self.images)


def _load_idx_dataset(name: str, split: str, data_dir, **fetch_kwargs) -> Dataset:
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
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


DATASETS: dict[str, Callable[..., Dataset]] = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28)}  # C×H×W
# Datasets whose FID/IS metric network ships with the package (metrics/features.py); a sweep needs one.
METRIC_NETWORKS = {"mnist"}


def load_dataset(name: str, split: str, data_dir=None) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return DATASETS[name](split, data_dir=data_dir)
