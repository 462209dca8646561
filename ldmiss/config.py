"""Plain-dataclass configuration shared by methods and presets (JSON/TOML ↔ dataclass).

Every choice DESIGN.md fixes is a named field here, so a user can switch it and an ablation can
measure it. ``from_dict`` rejects unknown keys, so a typo in a preset fails loudly.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass


@dataclass
class SDEConfig:
    beta_min: float = 0.1
    beta_max: float = 20.0
    eps: float = 1e-3


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    ema_decay: float = 0.999  # 0 disables EMA
    grad_clip: float = 1.0


@dataclass
class SamplerConfig:
    method: str = "em"  # "em" (Euler–Maruyama reverse SDE) or "ancestral"
    steps: int = 100
    batch_size: int = 500


@dataclass
class GuidanceConfig:
    weight: float = 1.0
    norm_match: bool = True
    grad_through_score: bool = True


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, data: dict | None):
    """Build dataclass ``cls`` from a (possibly partial, possibly nested) dict."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown option(s) for {cls.__name__}: {sorted(unknown)}; valid: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(hint, value)
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def merge(cfg, overrides: dict | None):
    """Copy of ``cfg`` with (nested) ``overrides`` applied."""
    base = to_dict(cfg)
    deep_update(base, overrides or {})
    return from_dict(type(cfg), base)


def deep_update(base: dict, upd: dict) -> None:
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = v


__all__ = ["SDEConfig", "TrainConfig", "SamplerConfig", "GuidanceConfig", "to_dict", "from_dict", "merge", "deep_update"]
