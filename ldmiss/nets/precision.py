"""Network arithmetic as config switches: ``precision`` ``fp32`` (exact, the default), ``bf16``
(autocast) or ``tf32`` (fp32 storage, TF32 matmuls and convolutions on NVIDIA GPUs; on the CPU the
same as fp32), and ``compile`` (torch.compile of the network's forward).

Why: the latent prior's MLP is matmul-bound, and CPUs with AVX-512 BF16 (and GPUs with tensor
cores) run its bf16 matmuls about 3× faster (bench/precision.py). Only the network's forward runs
under autocast; its output, the loss, the SDE arithmetic, the optimiser and the weights stay in
fp32, so a model trained in bf16 is saved, loaded and sampled like any other.
"""
from __future__ import annotations

import weakref
from contextlib import contextmanager, nullcontext
from typing import Callable

import torch

PRECISIONS = ("fp32", "bf16", "tf32")


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
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {list(PRECISIONS)}")
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
    if precision == "fp32":
        return f
    autocast(precision)  # validates the name

    def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast(precision, x.device):
            out = f(x, t)
        return out.float()

    return run
