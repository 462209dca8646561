"""``--device auto|cpu|cuda|cuda:N`` resolved in one place.

Random generators do not depend on the device: they all live on the CPU (ldmiss/rng.py), so a
seed gives the same noise on every device.
"""
from __future__ import annotations

import torch

from .errors import Unavailable, UsageError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise UsageError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N") from exc
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise Unavailable(f"--device {device} was requested but no CUDA GPU is available; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise Unavailable(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def run_devices(device: str, n_runs: int, gpu_count: int) -> list[str]:
    """One device per run of a parallel sweep: ``cuda`` (no index) with several GPUs spreads the
    runs over them round-robin; anything else gives every run the device asked for."""
    if device in ("auto", "cuda") and gpu_count > 1:
        return [f"cuda:{k % gpu_count}" for k in range(n_runs)]
    return [device] * n_runs
