"""Plain-dataclass configuration shared by methods and presets (JSON/TOML ↔ dataclass).

Every choice of the method (docs/method.md) is a named field of a config dataclass, kept beside
the code that reads it (``SDEConfig`` in diffusion/sde.py, ``SamplerConfig`` in diffusion/samplers.py,
``TrainConfig`` in training.py, each conditioner's in its module …), so a user can switch it and an
ablation can measure it; a field with a closed set of values takes them from the registry it names
(``constrain``). This module is the machinery only. ``from_dict`` is the one gate every configuration passes (``--set``, preset
tables, API keyword overrides, a loaded ``config.json``): it rejects unknown keys, values of the
wrong type and values outside a field's choices or range, naming the key — so a typo fails before
any work starts and no model is ever saved with a config it could not use.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .errors import UsageError


class ConfigError(UsageError):
    """A configuration key that does not exist or holds a value of the wrong type or range."""


# Fields with a closed set of values, a range or a rule: (dataclass name, field) → ("choices", values) |
# ("range", lo, hi) | ("check", fn) with fn(value) → a problem (str) or None. ``values`` may be a registry
# (a dict): its current keys are the choices, so an entry registered later is valid. Lists are checked item by item.
CONSTRAINTS: dict[tuple[str, str], tuple] = {}


def constrain(cls_name: str, **fields):
    CONSTRAINTS.update({(cls_name, k): v for k, v in fields.items()})


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
        if ok and not math.isfinite(value):  # a NaN weight imputes NaN everywhere; an inf one diverges
            raise ConfigError(f"{path}: must be a finite number, got {value!r}")
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
    if rule[0] == "choices":
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if v not in rule[1]:
                raise ConfigError(f"{path}: {v!r} is not one of {list(rule[1])}")
    if rule[0] == "check":
        problem = rule[1](value)
        if problem:
            raise ConfigError(f"{path}: {problem}")
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
            # a partial table starts from the parent's default for this field (e.g. the latent prior's
            # tuned TrainConfig), not from the nested dataclass's own defaults
            default = _field_default(cls, key)
            kwargs[key] = from_dict(hint, value, key_path) if default is None else merge(default, value, key_path)
        else:
            kwargs[key] = _check_value(value, hint, key_path)
            _check_constraint(cls, key, kwargs[key], key_path)
    return cls(**kwargs)


def _field_default(cls, name: str):
    """The default value of dataclass field ``name`` of ``cls`` (from its default or factory), or None."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


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


__all__ = ["ConfigError", "constrain", "to_dict", "from_dict", "merge", "leaves", "under", "deep_update", "rename_keys"]


def rename_keys(data: dict, renames: dict[str, str]) -> tuple[dict, list[str]]:
    """A copy of the nested dict ``data`` with each dotted key of ``renames`` moved to its new
    dotted place (an old spelling of a config, e.g. ``guidance`` → ``impute.guidance``); returns the
    copy and the old keys it found. Where both spellings are present, the old one's values are applied
    over the new one's (an old-style ``--set`` on top of a preset written in today's spelling)."""
    import copy
    out, found = copy.deepcopy(data), []
    for old, new in renames.items():
        *parents, leaf = old.split(".")
        node = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        found.append(old)
        *new_parents, new_leaf = new.split(".")
        target = out
        for key in new_parents:
            target = target.setdefault(key, {})
        if isinstance(value, dict) and isinstance(target.get(new_leaf), dict):
            merged = target[new_leaf]
            deep_update(merged, value)
            value = merged
        target[new_leaf] = value
    return out, found


def parse_set(assignments: list[str] | None) -> dict:
    """``["method.ldmiss.prior.train.steps=100", ...]`` → nested dict (values parsed as TOML literals)."""
    out: dict = {}
    for item in assignments or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out
