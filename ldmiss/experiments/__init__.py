"""The poster's experiment: presets, sweeps over methods × rates × seeds, results store, report."""
from .config import ExperimentConfig, list_presets, load_preset, parse_set
from .report import build_report
from .sweep import run_one, run_sweep

__all__ = ["ExperimentConfig", "list_presets", "load_preset", "parse_set", "build_report", "run_one", "run_sweep"]
