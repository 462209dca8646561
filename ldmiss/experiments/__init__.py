"""The poster's experiment: presets, sweeps over methods × rates × seeds, results store, report.

The names load on first use (PEP 562): importing one submodule (``experiments.config`` for a
preset) does not pull in the sweep's metrics (torchmetrics, scipy)."""
from ..lazy import lazy_exports

_EXPORTS = {"ExperimentConfig": "config", "list_presets": "config", "load_preset": "config", "parse_set": "config",
            "build_report": "report", "run_one": "sweep", "run_sweep": "sweep"}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
