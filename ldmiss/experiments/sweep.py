"""Conditions × methods × training missing rates × seeds: plan the runs and hand them to workers.

A condition (dataset and masks, ``ExperimentConfig.conditions``) is one more axis: its runs live
under its own folder of the results root (store.condition_tag; none for MNIST under MCAR).

What a run sees comes from :mod:`.protocol` (same data, masks and reference for every method of a
seed) and how it is scored from :mod:`.evaluation`; this module only plans, schedules and stores.
Runs are independent processes' worth of work, handed to an executor (executors.py): local
processes (``jobs`` > 1 in parallel, one thread each) or Ray tasks.
"""
from __future__ import annotations

import json
import platform
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__, cache
from ..config import ConfigError, to_dict
from ..methods import get_method_class, load_method
from ..methods.fit_identity import digest
from ..missing import apply_mask
from ..nets.precision import resolve_auto
from . import store
from .config import ExperimentConfig
from .evaluation import RunContext, evaluate
from .executors import LocalExecutor, order_longest_first
from .protocol import held_out_real, reference_stats, scored_test_data, stream_seed, training_data


@dataclass(frozen=True)
class RunSpec:
    method: str
    rate: float
    seed: int
    group: str = ""  # the condition's folder (store.condition_tag)

    @property
    def name(self) -> str:
        return store.run_name(self.method, self.rate, self.seed, self.group)

    def path(self, root: Path) -> Path:
        return store.run_dir(root, self.method, self.rate, self.seed, self.group)


def run_settings(cfg: ExperimentConfig, method_name: str, device, config=None) -> dict:
    """Everything that determines a run's result besides (method, rate, seed): the experiment's
    protocol fields, the method's full config (defaults included, ``auto`` precisions as ``device``
    resolves them) and the package version. ``device`` has no default: ``auto`` resolves to bf16 or
    fp32 by the device, so a wrong default would compare a GPU run's settings with a CPU's.
    ``config``: the method's config when the caller has already built it from ``cfg``."""
    if config is None:
        config = get_method_class(method_name).build_config(None, **cfg.overrides_for(method_name))
    return {**{k: getattr(cfg, k) for k in store.PROTOCOL_FIELDS}, "config": to_dict(resolve_auto(config, device)),
            "ldmiss_version": __version__}


def default_settings(method_name: str) -> dict:
    """The settings of a method and experiment left at their defaults (see store.settings_diff)."""
    cls = get_method_class(method_name)
    return {**{k: getattr(ExperimentConfig(name="default"), k) for k in store.PROTOCOL_FIELDS},
            "config": to_dict(cls.config_cls())}


def check_finished(cfg: ExperimentConfig, root: Path, specs: list[RunSpec], device,
                   force: bool = False) -> list[RunSpec]:
    """The finished runs among ``specs``. One made with other settings than ``cfg``'s is an error
    naming the runs and the differing fields — unless ``force``, when it is rerun (not counted)."""
    done, stale = [], []
    groups = dict(cfg.tagged_groups())
    keys = {(s.group, s.method) for s in specs}
    current = {(g, m): run_settings(groups[g], m, device) for g, m in keys}
    defaults = {m: default_settings(m) for _, m in keys}
    for spec in specs:
        path = spec.path(root)
        if not store.is_done(path):
            continue
        diff = store.settings_diff(store.stored_settings(store.read_run(path)), current[(spec.group, spec.method)],
                                   defaults[spec.method])
        if diff and not force:
            stale.append(f"{spec.name}: " + "; ".join(diff[:4])
                         + (f"; … {len(diff) - 4} more" if len(diff) > 4 else ""))
        elif not diff:
            done.append(spec)
    if stale:
        shown = "\n  ".join(stale[:5]) + (f"\n  … and {len(stale) - 5} more run(s)" if len(stale) > 5 else "")
        raise ConfigError(f"{len(stale)} finished run(s) in {root} were made with other settings:\n  {shown}\n"
                          f"use another --out, or --force to rerun them with the new settings")
    return done


CHECKPOINT_EVERY = 120.0  # seconds of training between checkpoints of a run in flight


def run_one(cfg: ExperimentConfig, spec: RunSpec, root: Path, device: str = "auto", data_dir=None,
            progress: bool = False, checkpoint_every: float = CHECKPOINT_EVERY) -> dict:
    """Fit, evaluate and store one run (``cfg``: its condition's config); return its metrics document."""
    final = spec.path(root)
    cls = get_method_class(spec.method)
    method = cls(None, device=device, **cfg.overrides_for(spec.method))
    settings = run_settings(cfg, spec.method, method.device, method.config)
    x, m = training_data(cfg, spec.rate, spec.seed, data_dir)
    ckpt = store.checkpoint_dir(root, spec.method, spec.rate, spec.seed, store.settings_hash(settings), spec.group)
    method, fit_seconds, reused, fit_dir = fit_or_reuse(method, x, m, stream_seed(spec.seed, "fit", spec.rate), root,
                                                        device, progress, ckpt, checkpoint_every)
    x_test, m_test, unscored = scored_test_data(cfg, spec.seed, data_dir)
    ref = reference_stats(cfg.dataset, cfg.n_ref, data_dir, cfg.dataset_options)
    ctx = RunContext(cfg, method, spec.rate, spec.seed, x, m, x_test, m_test,
                     held_out_real(cfg, spec.seed, data_dir), ref, m_unscored=unscored)
    ctx.timings["fit_seconds"] = fit_seconds
    if reused:
        ctx.timings["fit_reused"] = True
    shared = method.shared_fit_seconds()
    if shared:
        ctx.timings["fit_shared_seconds"] = shared
    ctx.examples.update(test_true=x_test[:cfg.grid].numpy(), test_mask=m_test[:cfg.grid].numpy())
    metrics = {"n_eval": len(x_test), "n_ref": ref.n if ref else 0, "reference": ref.name if ref else None,
               **evaluate(ctx)}
    doc = {"preset": cfg.name, "method": spec.method, "train_rate": spec.rate, "seed": spec.seed, "group": spec.group,
           "test_rate": cfg.test_rate, "train_size": len(x), "draws": cfg.draws, "metrics": metrics,
           "timings": ctx.timings, "config": to_dict(method.config), "ldmiss_version": __version__,
           "device": str(method.device), "torch_threads": torch.get_num_threads(), "host": platform.node(),
           "settings": settings, "settings_hash": store.settings_hash(settings)}
    with store.staging(final) as tmp:
        method.save(tmp / "model", weights_from=fit_dir)  # a link to the fit cache's weights, not a copy
        np.savez_compressed(tmp / "examples.npz", **ctx.examples)
        store.write_json(tmp / store.METRICS_FILE, doc)
    shutil.rmtree(ckpt, ignore_errors=True)
    return doc


def fit_or_reuse(method, x, m, seed: int, root: Path, device, progress, checkpoint_dir, checkpoint_every):
    """Fit ``method`` on (x, m), or load the identical fit another run of this root made: conditions
    that differ only in their test masks, or configs that differ only in options the fit never reads
    (samplers, conditioners: ``Method.FIT_INDEPENDENT``), train the same model on the same data, so it
    is trained once (``_cache/fits``, keyed by method, fit settings, data, mask and seed; a lock makes
    a second process wait for the first). Returns (method, seconds the fit took when it was made,
    reused, the cache directory holding its weights). The run folder links those weights (a hard
    link: one copy on disk, and the run keeps its model if the cache is deleted)."""
    key = digest([method.name, method.fit_settings(method.config), seed, __version__], x, m)
    with cache.entry(store.cache_dir(root) / "fits", f"{method.name}-{key}") as entry:
        if entry.ready:
            cached = load_method(entry.path, device=device).adopt_config(method.config)  # e.g. another sampler
            return cached, json.loads((entry.path / "fit.json").read_text())["fit_seconds"], True, entry.path
        t0 = time.perf_counter()
        method.fit(apply_mask(x, m), m, seed=seed, progress=progress, cache_dir=store.cache_dir(root),
                   checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
        seconds = time.perf_counter() - t0
        with entry.build() as tmp:
            method.save(tmp)
            store.write_json(tmp / "fit.json", {"fit_seconds": seconds})
    return method, seconds, False, entry.path


def _worker(cfg, spec, root, data_dir, device, threads, progress=False):
    """Claim, run and release one run. ``(spec, None, None)`` = another sweeper on this root has it
    (or has just finished it with these settings)."""
    torch.set_num_threads(threads)
    final = spec.path(root)
    if not store.claim(final):
        return spec, None, None
    try:
        if store.is_done(final) and not store.settings_diff(store.stored_settings(store.read_run(final)),
                                                            run_settings(cfg, spec.method, device),
                                                            default_settings(spec.method)):
            return spec, None, None
        return spec, run_one(cfg, spec, root, device, data_dir, progress), None
    except Exception:  # reported by the parent; other runs go on
        return spec, None, traceback.format_exc()
    finally:
        store.release(final)


def _finished(bar, spec: RunSpec, doc: dict | None, err: str | None, failures: list, others: list) -> None:
    """One line per finished run (long runs otherwise look stalled), then advance the bar."""
    name = spec.name
    if err:
        failures.append((spec, err))
        bar.write(f"  {name}: FAILED ({err.strip().splitlines()[-1]})")
    elif doc is None:
        others.append(spec)
        if not bar.disable:
            bar.write(f"  {name}: left to another sweeper on this folder")
    elif not bar.disable:
        mse = ", ".join(f"{mode} MSE {v['mse']:.4f}" for mode, v in doc["metrics"]["impute"].items())
        fid = (f", sample FID {doc['metrics']['sample']['fid']:.1f}" if "fid" in doc["metrics"].get("sample", {})
               else "")
        bar.write(f"  {name}: fit {doc['timings']['fit_seconds']:.0f} s; {mse}{fid}")
    bar.update(1)


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    """Every (condition, method, rate, seed); cheap runs first within a seed/rate so partial sweeps
    already have the references."""
    return [RunSpec(m, float(r), int(s), tag) for tag, _ in cfg.tagged_groups()
            for s in cfg.seeds for r in cfg.train_rates for m in cfg.methods]


def run_sweep(cfg: ExperimentConfig, root: str | Path, jobs: int = 1, device: str = "auto", data_dir=None,
              progress: bool = True, force: bool = False, executor=None) -> dict:
    """Run every (method, rate, seed) not yet finished under ``root``; return a summary. Finished
    runs made with other settings stop the sweep before any work (ConfigError), or with ``force``
    are rerun. ``executor`` (executors.py) says where runs execute; default: ``jobs`` local
    processes on ``device``."""
    cfg.check()  # every key, type and method table checked before any work (once: a checked config is not rechecked)
    executor = executor or LocalExecutor(jobs, device)
    root = Path(root)
    specs = plan(cfg)
    done = set(check_finished(cfg, root, specs, device, force))
    root.mkdir(parents=True, exist_ok=True)
    store.clean_stale(root)
    store.write_json(root / store.SWEEP_FILE, cfg.to_dict())
    todo = [s for s in specs if s not in done]
    failures: list[tuple[RunSpec, str]] = []
    others: list[RunSpec] = []
    start = time.perf_counter()
    if progress:
        print(f"sweep {cfg.name}: {len(todo)} run(s) to do, {len(specs) - len(todo)} already finished, in "
              f"{executor.describe()}; a line is printed as each run finishes")
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"sweep {cfg.name}", disable=not progress)
    in_process = isinstance(executor, LocalExecutor) and executor.jobs <= 1
    groups = dict(cfg.tagged_groups())
    tasks = [(groups[s.group], s, root, data_dir) for s in todo]
    if not in_process:
        tasks = order_longest_first(tasks, lambda t: get_method_class(t[1].method).relative_cost)
    for spec, doc, err in executor.run(_worker, tasks, progress=progress and in_process):
        _finished(bar, spec, doc, err, failures, others)
    bar.close()
    for spec, err in failures:
        print(f"run {spec.name} failed:\n{err}")
    return {"runs": len(specs), "ran": len(todo) - len(others), "skipped": len(specs) - len(todo) + len(others),
            "by_others": len(others), "failed": len(failures),
            "seconds": time.perf_counter() - start}
