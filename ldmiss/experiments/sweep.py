"""Methods × training missing rates × seeds, each run evaluated and stored atomically.

For a seed, every method sees the same training subset and masks and is scored on the same test
images, the same 50% test mask, and the same FID reference statistics, so numbers compare.
Runs are independent processes' worth of work: ``jobs`` > 1 runs them in parallel, one thread each.
"""
from __future__ import annotations

import os
import platform
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..config import to_dict
from ..data import load_dataset
from ..metrics import FIDReference, inception_score, missing_mse
from ..methods import get_method_class
from ..missing import apply_mask, make_mask
from . import store
from .config import ExperimentConfig

# Distinct streams derived from the run seed, so e.g. the test mask never depends on the rate.
_STREAM = {"subset": 1, "train_mask": 2, "test_subset": 3, "test_mask": 4, "fit": 5, "sample": 6, "impute": 7}


def stream_seed(seed: int, stream: str, rate: float | None = None) -> int:
    base = 1_000_003 * seed + 7919 * _STREAM[stream]
    return base + (int(round(rate * 1000)) if rate is not None else 0)


@lru_cache(maxsize=4)
def _images(dataset: str, split: str, data_dir: str | None) -> torch.Tensor:
    return torch.from_numpy(load_dataset(dataset, split, data_dir).images).float() / 255.0


@lru_cache(maxsize=2)
def reference_stats(dataset: str, n_ref: int, data_dir: str | None) -> FIDReference:
    """FID reference: ``n_ref`` random test images (fixed subset, shared by every run)."""
    test = _images(dataset, "test", data_dir)
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(12345))[:min(n_ref, len(test))]
    return FIDReference(test[idx], name=f"{dataset}-test[{len(idx)}]")


def training_data(cfg: ExperimentConfig, rate: float, seed: int, data_dir=None):
    """(x, obs_mask) for a seed: random subset (same for every rate) and a fixed MCAR mask."""
    train = _images(cfg.dataset, "train", data_dir)
    n = min(cfg.train_size, len(train))
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(stream_seed(seed, "subset")))[:n]
    x = train[idx]
    m = make_mask(cfg.mechanism, x.shape, rate, stream_seed(seed, "train_mask", rate))
    return x, m


def test_data(cfg: ExperimentConfig, seed: int, data_dir=None):
    """(x_true, obs_mask) for a seed: ``n_eval`` random test images with a fixed test mask."""
    test = _images(cfg.dataset, "test", data_dir)
    n = min(cfg.n_eval, len(test))
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(stream_seed(seed, "test_subset")))[:n]
    x = test[idx]
    return x, make_mask(cfg.mechanism, x.shape, cfg.test_rate, stream_seed(seed, "test_mask"))


@dataclass(frozen=True)
class RunSpec:
    method: str
    rate: float
    seed: int


def run_one(cfg: ExperimentConfig, spec: RunSpec, root: Path, device: str = "auto", data_dir=None,
            progress: bool = False) -> dict:
    """Fit, evaluate and store one run; return its metrics document."""
    final = store.run_dir(root, spec.method, spec.rate, spec.seed)
    cls = get_method_class(spec.method)
    method = cls(None, device=device, **cfg.method_overrides(spec.method))
    x, m = training_data(cfg, spec.rate, spec.seed, data_dir)
    x_test, m_test = test_data(cfg, spec.seed, data_dir)
    ref = reference_stats(cfg.dataset, cfg.n_ref, data_dir)
    timings: dict = {}
    t0 = time.perf_counter()
    method.fit(apply_mask(x, m), m, seed=stream_seed(spec.seed, "fit", spec.rate), progress=progress)
    timings["fit_seconds"] = time.perf_counter() - t0
    metrics: dict = {"n_eval": len(x_test), "n_ref": ref.n, "reference": ref.name}
    examples: dict[str, np.ndarray] = {"test_true": x_test[:cfg.grid].numpy(), "test_mask": m_test[:cfg.grid].numpy()}
    if cls.generative:
        t0 = time.perf_counter()
        samples = method.sample(cfg.n_eval, seed=stream_seed(spec.seed, "sample", spec.rate), progress=progress)
        timings["sample_seconds"] = time.perf_counter() - t0
        is_mean, is_std = inception_score(samples)
        metrics["sample"] = {"fid": ref.fid(samples), "is": is_mean, "is_std": is_std, "n": len(samples)}
        examples["samples"] = samples[:cfg.grid]
    metrics["impute"] = {}
    x_obs = apply_mask(x_test, m_test)
    for mode in cls.impute_modes:
        t0 = time.perf_counter()
        result = method.impute(x_obs, m_test, draws=cfg.draws, mode=mode,
                               seed=stream_seed(spec.seed, "impute", spec.rate), progress=progress)
        timings[f"impute_{mode}_seconds"] = time.perf_counter() - t0
        is_mean, is_std = inception_score(result.mean)
        metrics["impute"][mode] = {"mse": missing_mse(result.mean, x_test, m_test), "fid": ref.fid(result.mean),
                                   "is": is_mean, "is_std": is_std, "n": len(result.mean)}
        examples[f"impute_{mode}"] = result.mean[:cfg.grid]
    doc = {"preset": cfg.name, "method": spec.method, "train_rate": spec.rate, "seed": spec.seed,
           "test_rate": cfg.test_rate, "train_size": len(x), "draws": cfg.draws, "metrics": metrics,
           "timings": timings, "config": to_dict(method.config), "ldmiss_version": __version__,
           "device": str(method.device), "torch_threads": torch.get_num_threads(), "host": platform.node()}
    with store.staging(final) as tmp:
        method.save(tmp / "model")
        np.savez_compressed(tmp / "examples.npz", **examples)
        store.write_json(tmp / store.METRICS_FILE, doc)
    return doc


def _worker(cfg, spec, root, device, data_dir, threads, progress=False):
    torch.set_num_threads(threads)
    try:
        return spec, run_one(cfg, spec, root, device, data_dir, progress), None
    except Exception:  # reported by the parent; other runs go on
        return spec, None, traceback.format_exc()


def _finished(bar, spec: RunSpec, doc: dict | None, err: str | None, failures: list) -> None:
    """One line per finished run (long runs otherwise look stalled), then advance the bar."""
    name = store.run_name(spec.method, spec.rate, spec.seed)
    if err:
        failures.append((spec, err))
        bar.write(f"  {name}: FAILED ({err.strip().splitlines()[-1]})")
    elif not bar.disable:
        mse = ", ".join(f"{mode} MSE {v['mse']:.4f}" for mode, v in doc["metrics"]["impute"].items())
        fid = f", sample FID {doc['metrics']['sample']['fid']:.1f}" if "sample" in doc["metrics"] else ""
        bar.write(f"  {name}: fit {doc['timings']['fit_seconds']:.0f} s; {mse}{fid}")
    bar.update(1)


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    """Cheap runs first within a seed/rate so partial sweeps already have the references."""
    return [RunSpec(m, float(r), int(s)) for s in cfg.seeds for r in cfg.train_rates for m in cfg.methods]


def run_sweep(cfg: ExperimentConfig, root: str | Path, jobs: int = 1, device: str = "auto", data_dir=None,
              progress: bool = True) -> dict:
    """Run every (method, rate, seed) not yet finished under ``root``; return a summary."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    store.clean_stale(root)
    store.write_json(root / store.SWEEP_FILE, cfg.to_dict())
    for name in cfg.methods:
        get_method_class(name)  # fail before any work on a typo
    specs = plan(cfg)
    todo = [s for s in specs if not store.is_done(store.run_dir(root, s.method, s.rate, s.seed))]
    failures: list[tuple[RunSpec, str]] = []
    start = time.perf_counter()
    if progress:
        how = f"{jobs} parallel processes" if jobs > 1 else "one process"
        print(f"sweep {cfg.name}: {len(todo)} run(s) to do, {len(specs) - len(todo)} already finished, in {how}; "
              f"a line is printed as each run finishes")
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"sweep {cfg.name}", disable=not progress)
    if jobs <= 1:
        for spec in todo:
            bar.set_postfix_str(f"{spec.method} r={spec.rate} s={spec.seed}")
            _, doc, err = _worker(cfg, spec, root, device, data_dir, torch.get_num_threads(), progress)
            _finished(bar, spec, doc, err, failures)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        todo.sort(key=lambda s: -get_method_class(s.method).relative_cost)  # longest first packs best
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_worker, cfg, s, root, device, data_dir, threads) for s in todo]
            for fut in as_completed(futures):
                spec, doc, err = fut.result()
                _finished(bar, spec, doc, err, failures)
    bar.close()
    for spec, err in failures:
        print(f"run {store.run_name(spec.method, spec.rate, spec.seed)} failed:\n{err}")
    return {"runs": len(specs), "ran": len(todo), "skipped": len(specs) - len(todo), "failed": len(failures),
            "seconds": time.perf_counter() - start}
