"""The poster's experiment: presets, sweeps over methods × rates × seeds, results store, report.

The names load on first use (PEP 562): importing one submodule (``experiments.config`` for a
preset) does not pull in the sweep's metrics (torchmetrics, scipy)."""
import importlib

_EXPORTS = {"ExperimentConfig": "config", "list_presets": "config", "load_preset": "config", "parse_set": "config",
            "build_report": "report", "run_one": "sweep", "run_sweep": "sweep"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:  # a submodule (``experiments.store`` …), as the eager imports made it an attribute
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
