"""Imputation functions: conditioners that sample p(x | observed pixels) from an unconditional prior.

One module per conditioner, one signature (:mod:`.base`), one registry. A new conditioner is its
module (``@register_conditioner`` on its ``run`` function, its config dataclass) plus its import
below: the config table every diffusion method carries (``impute.<name>.*``, from
:func:`conditioner_configs`), ``impute(mode=…)``, the CLI's choices, compare-imputers and the
contract tests all read the registry.
"""
from dataclasses import field, make_dataclass

# the registry: one import per conditioner (importing a module registers it)
from . import daps, dps, guidance, pigdm, repaint, replacement, smc  # noqa: F401
from .base import CONDITIONERS, Conditioner, Observation, Prior, get_conditioner, register_conditioner, run_conditioner
from .guidance import GuidanceConfig, SelfGuidance
from .replacement import Replacement, ReplacementConfig

_TABLES: dict[bool, type] = {}


def conditioner_configs(elementwise: bool) -> type:
    """The dataclass of the knobs of every conditioner a diffusion space supports (``elementwise``:
    the space is pixel space, so pixel ``replacement`` applies), one field per conditioner, each with
    its paper defaults; the ``impute`` table of a diffusion method's config."""
    if elementwise not in _TABLES:
        fields = [(name, c.config_cls, field(default_factory=c.config_cls))
                  for name, c in CONDITIONERS.items() if c.supports(elementwise)]
        name = "PixelConditionerConfigs" if elementwise else "LatentConditionerConfigs"
        _TABLES[elementwise] = make_dataclass(name, fields)
    return _TABLES[elementwise]


__all__ = ["CONDITIONERS", "Conditioner", "Observation", "Prior", "get_conditioner", "register_conditioner",
           "run_conditioner", "conditioner_configs", "GuidanceConfig", "SelfGuidance", "Replacement",
           "ReplacementConfig"]
