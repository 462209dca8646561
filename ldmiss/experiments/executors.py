"""Where a sweep's runs execute: one interface, two executors.

An executor takes the runs a sweep planned and yields each run's result as it finishes; it does
not plan, store or score (the sweep and the store do). ``local`` is a process pool on this
machine (or the calling process itself for one job); ``ray`` submits one Ray task per run, with
the run's CPU and GPU resources, to a Ray cluster — a local one started on the fly when no address
is given. Runs share nothing but the results folder, which must therefore be on a filesystem all
of the cluster's nodes see; the store's claims keep two workers off the same run.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable, Iterable, Iterator

import torch

from ..device import run_devices
from ..errors import Unavailable, UsageError

EXECUTORS = ("local", "ray")


def die_with_parent(parent: int, poll_seconds: float = 1.0) -> None:
    """Pool-worker initializer: exit when the sweep process that started this worker is gone.

    Why: a ``kill -9`` of the sweep (or a crash) gives its pool no chance to stop the workers, which
    then run their current fit to the end and sit idle holding ~1 GB each. A daemon thread checks
    once per ``poll_seconds`` whether the worker's parent is still ``parent`` (an orphan is
    re-parented) and ends the process at once when it is not."""
    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)
    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


class LocalExecutor:
    """``jobs`` processes on this machine, one thread each on a 2-core CPU (cores ÷ jobs); one job
    runs in the calling process with its inner progress bars. The workers end with the sweep, even
    when it is killed (:func:`die_with_parent`)."""

    def __init__(self, jobs: int = 1, device: str = "auto"):
        self.jobs, self.device = max(1, int(jobs)), str(device)

    def describe(self) -> str:
        return f"{self.jobs} parallel processes" if self.jobs > 1 else "one process"

    def run(self, worker: Callable, tasks: list[tuple], progress: bool = False) -> Iterator:
        if self.jobs <= 1:
            for task in tasks:
                yield worker(*task, self.device, torch.get_num_threads(), progress)
            return
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        devices = run_devices(self.device, len(tasks), gpus)  # several GPUs: one per run, round-robin
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=get_context("spawn"),
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(worker, *task, d, threads) for task, d in zip(tasks, devices)]
            for fut in as_completed(futures):
                yield fut.result()


class RayExecutor:
    """One Ray task per run with ``cpus_per_run`` CPUs (its torch threads) and ``gpus_per_run``
    GPUs (Ray sets each task's ``CUDA_VISIBLE_DEVICES``, so the run sees its GPU as ``cuda``).
    ``address`` None starts a local Ray instance for this sweep and stops it afterwards."""

    def __init__(self, address: str | None = None, cpus_per_run: int = 1, gpus_per_run: float = 0,
                 device: str = "auto", num_cpus: int | None = None):
        if cpus_per_run < 1 or gpus_per_run < 0:
            raise UsageError("--cpus-per-run must be ≥ 1 and --gpus-per-run ≥ 0")
        self.address, self.cpus, self.gpus, self.num_cpus = address, int(cpus_per_run), gpus_per_run, num_cpus
        # a run with no GPU reserved computes on the CPU even on a GPU node (it must not share one
        # unannounced); with a GPU reserved, "cuda" is the one Ray gave it
        self.device = "cuda" if gpus_per_run > 0 else ("cpu" if str(device) in ("auto", "cuda") else str(device))

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        return f"Ray tasks on {where} ({self.cpus} CPU, {self.gpus} GPU per run)"

    def run(self, worker: Callable, tasks: list[tuple], progress: bool = False) -> Iterator:
        try:
            import ray
        except ImportError as exc:
            raise Unavailable("--executor ray needs Ray: pip install 'ldmiss[ray]'") from exc
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, num_cpus=self.num_cpus if self.address is None else None,
                     include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        try:
            remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)(worker)
            pending = [remote.remote(*task, self.device, self.cpus) for task in tasks]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            if started:
                ray.shutdown()


def make_executor(name: str = "local", *, jobs: int = 1, device: str = "auto", address: str | None = None,
                  cpus_per_run: int = 1, gpus_per_run: float = 0, num_cpus: int | None = None):
    if name == "local":
        return LocalExecutor(jobs, device)
    if name == "ray":
        return RayExecutor(address, cpus_per_run, gpus_per_run, device, num_cpus)
    raise UsageError(f"--executor {name!r}: choose from {list(EXECUTORS)}")


def order_longest_first(tasks: Iterable[tuple], cost: Callable[[tuple], float]) -> list[tuple]:
    """Longest runs first packs a pool best (the sweep's hint: each method's ``relative_cost``)."""
    return sorted(tasks, key=lambda t: -cost(t))
