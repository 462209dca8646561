"""What identifies a fit: the settings its training reads, the data, the mask and the seed.

Two fits with the same identity train bit-identical models on the CPU, so a cache (the sweep's fit
cache, the shared β-VAE cache) may hand one out for the other. A method's ``FIT_INDEPENDENT``
options (samplers, conditioners, decoder inversion: read only after training) are left out of its
identity; that one list is the only place saying which options a fit does not read.
"""
from __future__ import annotations

import copy
import hashlib
import json

import torch

from ..config import to_dict


def without_paths(settings: dict, paths) -> dict:
    """A copy of the nested dict ``settings`` without the dotted ``paths``."""
    out = copy.deepcopy(settings)
    for path in paths:
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def fit_settings(method_cls, config) -> dict:
    """``config`` as a dict without the options its fit never reads (``method_cls.fit_independent``,
    normally ``FIT_INDEPENDENT``): what a fit depends on."""
    return without_paths(to_dict(config), method_cls.fit_independent(config))


def digest(settings, *tensors: torch.Tensor, length: int = 24) -> str:
    """A hex key over JSON-able ``settings`` and the bytes of ``tensors`` (data, masks, states)."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=float).encode())
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:length]
