"""Imputation functions: conditioners that sample p(x | observed pixels) from an unconditional prior.

One module per conditioner, one signature (:mod:`.base`), one registry. ``ConditionerConfigs`` is the
table of their knobs that a method's config carries (``impute.dps.step_size`` …); self-guidance keeps
its historical place (``guidance``) and pixel replacement reads the method's ``resample_jumps``.
"""
from dataclasses import dataclass, field

from . import daps, dps, guidance, pigdm, repaint, replacement, smc  # noqa: F401  (registers them)
from .base import CONDITIONERS, Conditioner, Observation, Prior, get_conditioner, register_conditioner, run_conditioner
from .daps import DAPSConfig
from .dps import DPSConfig
from .guidance import SelfGuidance
from .pigdm import PiGDMConfig
from .repaint import RepaintConfig
from .replacement import Replacement, ReplacementConfig
from .smc import SMCConfig


@dataclass
class ConditionerConfigs:
    """The knobs of the conditioners other than ``guidance`` (paper defaults; see each module)."""
    dps: DPSConfig = field(default_factory=DPSConfig)
    pigdm: PiGDMConfig = field(default_factory=PiGDMConfig)
    daps: DAPSConfig = field(default_factory=DAPSConfig)
    repaint: RepaintConfig = field(default_factory=RepaintConfig)
    smc: SMCConfig = field(default_factory=SMCConfig)


__all__ = ["CONDITIONERS", "Conditioner", "ConditionerConfigs", "Observation", "Prior", "get_conditioner",
           "register_conditioner", "run_conditioner", "SelfGuidance", "Replacement", "DPSConfig", "PiGDMConfig",
           "DAPSConfig", "RepaintConfig", "ReplacementConfig", "SMCConfig"]
