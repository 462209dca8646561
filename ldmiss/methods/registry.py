"""The method registry: name → class. A new method is one module with ``@register`` on its class
plus its import in ``methods/__init__.py``; the CLI, presets, sweeps and contract tests read this."""
from __future__ import annotations

from ..errors import UsageError

REGISTRY: dict[str, type] = {}


def register(cls):
    if getattr(cls, "name", None) in (None, ""):
        raise TypeError(f"{cls.__name__}: a registered method needs a ``name``")
    REGISTRY[cls.name] = cls
    return cls


def get_method_class(name: str) -> type:
    if name not in REGISTRY:
        raise UsageError(f"unknown method {name!r}; choose from {sorted(REGISTRY)}")
    return REGISTRY[name]
