"""Plain-dataclass configuration shared by methods and presets (JSON/TOML ↔ dataclass).

Every choice of the method (docs/method.md) is a named field here, so a user can switch it and an
ablation can measure it. ``from_dict`` is the one gate every configuration passes (``--set``, preset
tables, API keyword overrides, a loaded ``config.json``): it rejects unknown keys, values of the
wrong type and values outside a field's choices or range, naming the key — so a typo fails before
any work starts and no model is ever saved with a config it could not use.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass


class ConfigError(ValueError):
    """A configuration key that does not exist or holds a value of the wrong type or range."""


# Fields with a closed set of values or a range: (dataclass name, field) → ("choices", [...]) | ("range", lo, hi)
CONSTRAINTS: dict[tuple[str, str], tuple] = {}


def constrain(cls_name: str, **fields):
    CONSTRAINTS.update({(cls_name, k): v for k, v in fields.items()})


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
    lr_schedule: str = "constant"  # "constant" or "cosine" (decay to min_lr_ratio·lr at the last step)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0


@dataclass
class LossConfig:
    """What the ε-network predicts and how training times are drawn (see diffusion/parameterization.py)."""
    prediction: str = "eps"  # "eps" or "v"
    time_dist: str = "uniform"  # "uniform" t ~ U(ε, 1) or "logsnr" λ ~ N(logsnr_mean, logsnr_std²)
    logsnr_mean: float = 2.4
    logsnr_std: float = 2.4


@dataclass
class SamplerConfig:
    method: str = "em"  # "em" (Euler–Maruyama reverse SDE) or "ancestral"
    steps: int = 100
    batch_size: int = 500
    grid: str = "linear"  # "linear" in t, or "edm" (Karras et al.'s ρ = 7 grid; see VPSDE.time_grid)


@dataclass
class GuidanceConfig:
    weight: float = 1.0
    norm_match: bool = True
    grad_through_score: bool = True
    steps: int = 0  # reverse steps of a guided solve; 0 = the sampler's (each guided step costs a backward pass)


constrain("SDEConfig", beta_min=("range", 0.0, None), beta_max=("range", 0.0, None), eps=("range", 1e-6, 0.5))
constrain("TrainConfig", steps=("range", 1, None), batch_size=("range", 1, None), lr=("range", 0.0, None),
          ema_decay=("range", 0.0, 1.0), grad_clip=("range", 0.0, None), lr_schedule=("choices", ("constant", "cosine")),
          warmup_steps=("range", 0, None), min_lr_ratio=("range", 0.0, 1.0))
constrain("LossConfig", prediction=("choices", ("eps", "v")), time_dist=("choices", ("uniform", "logsnr")),
          logsnr_std=("range", 0.0, None))
constrain("GuidanceConfig", weight=("range", 0.0, None), steps=("range", 0, None))
constrain("SamplerConfig", method=("choices", ("em", "ancestral")), grid=("choices", ("linear", "edm")), steps=("range", 1, None), batch_size=("range", 1, None))


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _check_value(value, hint, path: str):
    """``value`` converted to ``hint`` (int → float, list → tuple), or ConfigError naming ``path``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_value(value, option, path)
            except ConfigError:
                pass
        raise ConfigError(f"{path}: expected {' or '.join(_type_name(o) for o in options)}, got {value!r}")
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif hint is dict or origin is dict:
        ok = isinstance(value, dict)
    elif origin in (list, tuple) or hint in (list, tuple):
        ok = isinstance(value, (list, tuple))
        if ok:
            args = [a for a in typing.get_args(hint) if a is not Ellipsis]
            if args:
                value = [_check_value(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
            value = tuple(value) if (origin or hint) is tuple else list(value)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{path}: expected {_type_name(hint)}, got {value!r} ({type(value).__name__})")
    return value


def _check_constraint(cls, key: str, value, path: str) -> None:
    """The nearest constraint on ``key`` along ``cls``'s bases, so a subclassed config inherits its
    parent's rules instead of restating them."""
    rule = next((CONSTRAINTS[(c.__name__, key)] for c in cls.__mro__ if (c.__name__, key) in CONSTRAINTS), None)
    if rule is None:
        return
    if rule[0] == "choices" and value not in rule[1]:
        raise ConfigError(f"{path}: {value!r} is not one of {list(rule[1])}")
    if rule[0] == "range":
        lo, hi = rule[1], rule[2]
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ConfigError(f"{path}: {v!r} is outside [{lo}, {hi if hi is not None else '∞'}]")


def from_dict(cls, data: dict | None, path: str = ""):
    """Build dataclass ``cls`` from a (possibly partial, possibly nested) dict, checking every key,
    type and constraint; ``path`` prefixes key names in errors (e.g. ``ldmiss.prior.train``)."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a table of options, got {data!r}")
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown option(s) {sorted(where + u for u in unknown)} for {cls.__name__}; "
                          f"valid: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint, key_path = hints[key], f"{path}.{key}" if path else key
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(hint, value, key_path)
        else:
            kwargs[key] = _check_value(value, hint, key_path)
            _check_constraint(cls, key, kwargs[key], key_path)
    return cls(**kwargs)


def merge(cfg, overrides: dict | None, path: str = ""):
    """Copy of ``cfg`` with (nested) ``overrides`` applied, checked like :func:`from_dict`."""
    base = to_dict(cfg)
    deep_update(base, overrides or {})
    return from_dict(type(cfg), base, path)


def leaves(d: dict, prefix: str = ""):
    """(dotted path, value) of every non-dict value in the nested dict ``d``, depth first."""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def under(path: str, prefixes) -> bool:
    """Whether the dotted ``path`` is one of ``prefixes`` or lies inside one (``a.b.c`` under ``a.b``)."""
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def deep_update(base: dict, upd: dict) -> None:
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = v


__all__ = ["ConfigError", "constrain", "SDEConfig", "TrainConfig", "LossConfig", "SamplerConfig", "GuidanceConfig", "to_dict", "from_dict", "merge", "leaves", "under", "deep_update"]
