"""Network arithmetic precision as a config switch: ``fp32`` (exact, the default) or ``bf16``.

Why: the latent prior's MLP is matmul-bound, and CPUs with AVX-512 BF16 (and GPUs with tensor
cores) run its bf16 matmuls about 3× faster (bench/precision.py). Only the network's forward runs
under autocast; its output, the loss, the SDE arithmetic, the optimiser and the weights stay in
fp32, so a model trained in bf16 is saved, loaded and sampled like any other.
"""
from __future__ import annotations

from typing import Callable

import torch

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device | str = "cpu"):
    """The autocast context for ``precision`` (a no-op for fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {list(PRECISIONS)}")
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def in_precision(net: Callable, precision: str) -> Callable:
    """``net(x, t)`` evaluated in ``precision``, returning fp32."""
    if precision == "fp32":
        return net
    autocast(precision)  # validates the name

    def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast(precision, x.device):
            out = net(x, t)
        return out.float()

    return run
