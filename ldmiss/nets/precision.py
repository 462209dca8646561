"""Network arithmetic as config switches: ``precision`` ``fp32`` (exact, the default), ``bf16``
(autocast), ``tf32`` (fp32 storage, TF32 matmuls and convolutions on NVIDIA GPUs; on the CPU the
same as fp32) or ``auto``, and ``compile`` (torch.compile of the network's forward).

Why: the latent prior's MLP is matmul-bound, and CPUs with AVX-512 BF16 (and GPUs with tensor
cores) run its bf16 matmuls about 3× faster (bench/precision.py). Only the network's forward runs
under autocast; its output, the loss, the SDE arithmetic, the optimiser and the weights stay in
fp32, so a model trained in bf16 is saved, loaded and sampled like any other.

A CPU without bf16 instructions (AVX2 only: many AMD EPYC and Ryzen, older Intel) emulates them,
and there bf16 is 5–16× *slower* than fp32 (docs/ablations.md, "Precision"). ``auto`` is bf16
where the device runs it natively and fp32 elsewhere; a method resolves it when it is built
(:func:`resolve_auto`), so a saved model and a run's settings hold the arithmetic that ran.
"""
from __future__ import annotations

import dataclasses
import functools
import weakref
from contextlib import contextmanager, nullcontext
from typing import Callable

import torch

from ..errors import UsageError

PRECISIONS = ("fp32", "bf16", "tf32", "auto")


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bf16 arithmetic in hardware: an NVIDIA GPU that supports it, or a CPU
    that oneDNN runs bf16 kernels on (AVX-512 or AVX2-VNNI-2 on x86, BF16 on ARM; torch's own test)."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return _native_bf16(torch.device(device).type)


@functools.lru_cache(maxsize=None)
def _native_bf16(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN: no fast bf16 path
        return False


def resolve(precision: str, device: torch.device | str = "cpu") -> str:
    """``precision`` with ``auto`` replaced by what it means on ``device`` (bf16 or fp32)."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose from {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def resolve_auto(config, device: torch.device | str = "cpu"):
    """A copy of the (nested dataclass) ``config`` whose ``precision`` fields no longer say ``auto``
    (the same object when none does)."""
    changes = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            new = resolve_auto(value, device)
            if new is not value:
                changes[f.name] = new
        elif f.name == "precision" and value == "auto":
            changes[f.name] = resolve(value, device)
    return dataclasses.replace(config, **changes) if changes else config


@contextmanager
def _tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def autocast(precision: str, device: torch.device | str = "cpu"):
    """The context for ``precision`` (a no-op for fp32, and for tf32 off NVIDIA GPUs)."""
    precision = resolve(precision, device)
    if precision == "tf32":
        return _tf32() if torch.device(device).type == "cuda" else nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def compiled(net: torch.nn.Module) -> Callable:
    """torch.compile of ``net`` for calling (its state_dict, and so saving, stay the plain module's);
    one compiled wrapper per network."""
    if net not in _COMPILED:
        _COMPILED[net] = torch.compile(net)
    return _COMPILED[net]


def in_precision(net: Callable, precision: str, compile: bool = False) -> Callable:
    """``net(x, t)`` evaluated in ``precision`` (and compiled if asked), returning fp32."""
    f = compiled(net) if compile else net
    resolve(precision)  # validates the name
    if precision == "fp32":
        return f

    def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast(precision, x.device):
            out = f(x, t)
        return out.float()

    return run
