"""Lazy package attributes (PEP 562): a package's public names load from their submodules on first use,
so importing the package — ``ldmiss`` for ``--help``, ``ldmiss.experiments`` for a preset — does not
import torch or the metrics until something needs them."""
from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str], namespace: dict):
    """(``__getattr__``, ``__dir__``) for ``package``: ``exports`` maps a name to the submodule holding
    it; any other attribute is tried as a submodule (as eager imports used to make them available)."""
    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
        else:
            try:
                value = importlib.import_module(f".{name}", package)
            except ModuleNotFoundError:
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        namespace[name] = value
        return value

    def __dir__():
        return sorted(namespace.get("__all__", exports))
    return __getattr__, __dir__
