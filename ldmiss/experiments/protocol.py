"""The experiment protocol: what every run of a seed sees, derived from the seed alone.

For a seed, every method gets the same training subset and training mask, is scored on the same
test images under the same test mask, against the same FID reference statistics, and the metric's
own floor is measured on real test images outside the evaluated set. Distinct random streams are
derived from the run seed, so e.g. the test mask never depends on the training rate. The sweep
(scheduling) and the evaluation (metrics) both read from here and nothing here knows about them.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .. import rng
from ..data import load_dataset
from ..data.datasets import options_key
from ..errors import UsageError
from ..metrics import FIDReference
from ..missing import make_mask
from .config import ExperimentConfig

STREAMS = {"subset": 1, "train_mask": 2, "test_subset": 3, "test_mask": 4, "fit": 5, "sample": 6, "impute": 7}


def stream_seed(seed: int, stream: str, rate: float | None = None) -> int:
    base = 1_000_003 * seed + 7919 * STREAMS[stream]
    return base + (int(round(rate * 1000)) if rate is not None else 0)


@lru_cache(maxsize=4)
def _split(dataset: str, split: str, data_dir: str | None, options: tuple):
    ds = load_dataset(dataset, split, data_dir, options=dict(options))
    x = torch.from_numpy(ds.float_images())
    natural = None if ds.obs_mask is None else torch.from_numpy(ds.obs_mask.astype("float32"))
    return x, natural


def images(dataset: str, split: str, data_dir: str | None, options: dict | None = None) -> torch.Tensor:
    """A split's images as float in [0, 1] (N×C×H×W; a pixel the data itself lacks holds 0)."""
    return _split(dataset, split, data_dir, options_key(options))[0]


def natural_mask(dataset: str, split: str, data_dir: str | None, options: dict | None = None):
    """The split's own missing pixels (1 = observed), or None when every image is complete."""
    return _split(dataset, split, data_dir, options_key(options))[1]


@lru_cache(maxsize=2)
def _reference(dataset: str, n_ref: int, data_dir: str | None, options: tuple) -> FIDReference | None:
    from ..data import dataset_info
    network = dataset_info(dataset, dict(options)).metric_network
    if network is None:
        return None
    test = _complete_test(dataset, data_dir, dict(options))
    idx = rng.randperm(len(test), rng.generator(12345))[:min(n_ref, len(test))]
    return FIDReference(test[idx], name=f"{dataset}-test[{len(idx)}]", dataset=network)


def reference_stats(dataset: str, n_ref: int, data_dir: str | None, options: dict | None = None) -> FIDReference | None:
    """FID reference: ``n_ref`` random test images (fixed subset, shared by every run); None for a
    dataset without a metric network (no FID/IS: its runs are scored on pixels only)."""
    return _reference(dataset, n_ref, data_dir, options_key(options))


def _complete_test(dataset: str, data_dir, options: dict | None) -> torch.Tensor:
    """The test images without a missing pixel of their own: what an FID reference may hold."""
    return _complete(dataset, data_dir, options_key(options))


@lru_cache(maxsize=4)
def _complete(dataset: str, data_dir, options: tuple) -> torch.Tensor:
    test = images(dataset, "test", data_dir, dict(options))
    natural = natural_mask(dataset, "test", data_dir, dict(options))
    if natural is None:
        return test
    complete = natural.flatten(1).min(1).values > 0
    if not complete.any():
        raise UsageError(f"dataset {dataset!r}: no test image is complete, so FID has no reference; give some "
                         "complete images (or a test split without NaNs)")
    return test[complete]


def training_data(cfg: ExperimentConfig, rate: float, seed: int, data_dir=None):
    """(x, obs_mask) for a seed: random subset (same for every rate) and a fixed mask drawn by the
    training mechanism (``mechanism`` with ``mechanism_params``); pixels the data itself lacks stay
    missing (the mask is the product of the two)."""
    train = images(cfg.dataset, "train", data_dir, cfg.dataset_options)
    natural = natural_mask(cfg.dataset, "train", data_dir, cfg.dataset_options)
    n = min(cfg.train_size, len(train))
    idx = rng.randperm(len(train), rng.generator(stream_seed(seed, "subset")))[:n]
    x = train[idx]
    m = make_mask(cfg.mechanism, x, rate, stream_seed(seed, "train_mask", rate), **cfg.mechanism_params)
    if natural is not None:
        m = m * natural[idx]
    return x, m


def _test_order(cfg: ExperimentConfig, seed: int, data_dir=None) -> torch.Tensor:
    test = images(cfg.dataset, "test", data_dir, cfg.dataset_options)
    return rng.randperm(len(test), rng.generator(stream_seed(seed, "test_subset")))


def scored_test_data(cfg: ExperimentConfig, seed: int, data_dir=None):
    """(x_true, obs_mask, unscored) for a seed: ``n_eval`` random test images with a fixed test mask
    drawn by the test mechanism (``test_mechanism``, default: the training one, with its parameters).

    A test image may lack pixels of its own (a user's folder of damaged scans may hold no complete
    image at all): the imputer is given the pixels both the data and the test mask keep, and is
    scored on the pixels the data has and the test mask hides — the only ones with a truth.
    ``unscored`` is 1 where a pixel is *not* scored (the metrics score where it is 0), which for
    complete images is the test mask itself."""
    test = images(cfg.dataset, "test", data_dir, cfg.dataset_options)
    natural = natural_mask(cfg.dataset, "test", data_dir, cfg.dataset_options)
    idx = _test_order(cfg, seed, data_dir)[:min(cfg.n_eval, len(test))]
    x = test[idx]
    name, params = cfg.test_masking()
    m = make_mask(name, x, cfg.test_rate, stream_seed(seed, "test_mask"), **params)
    if natural is None:
        return x, m, m
    own = natural[idx].to(m)
    unscored = 1 - own * (1 - m)
    if not (unscored == 0).any():
        raise UsageError(f"dataset {cfg.dataset!r}: the test mask hides none of the test images' observed pixels, "
                         "so nothing can be scored; raise test_rate")
    return x, m * own, unscored


def test_data(cfg: ExperimentConfig, seed: int, data_dir=None):
    """(x_true, obs_mask) of :func:`scored_test_data` (what the imputer is given)."""
    x, m, _ = scored_test_data(cfg, seed, data_dir)
    return x, m


def held_out_real(cfg: ExperimentConfig, seed: int, data_dir=None) -> torch.Tensor:
    """As many real test images as are evaluated, disjoint from the evaluated ones: their FID against
    the reference is what a perfect model would score at this N (the metric's floor), and they are
    the held-out side of the memorisation check. Fewer when the test set is too small to spare them;
    only complete ones (none, for data with no metric network, which has no use for them)."""
    test = images(cfg.dataset, "test", data_dir, cfg.dataset_options)
    natural = natural_mask(cfg.dataset, "test", data_dir, cfg.dataset_options)
    order = _test_order(cfg, seed, data_dir)
    n = min(cfg.n_eval, len(test))
    held = order[n:2 * n]
    if natural is not None:
        held = held[natural[held].flatten(1).min(1).values > 0]
    return test[held]
