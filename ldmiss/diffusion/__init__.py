"""Diffusion core shared by every method: SDE, losses, samplers, conditioners. Knows no networks."""
from .conditioners import CONDITIONERS, ConditionerConfigs, Observation, Prior, Replacement, SelfGuidance, run_conditioner
from .losses import dsm_loss
from .normalizer import LatentNormalizer
from .parameterization import PREDICTIONS, eps_from_output
from .samplers import STEPPERS, sample
from .sde import VPSDE

__all__ = ["VPSDE", "dsm_loss", "LatentNormalizer", "PREDICTIONS", "eps_from_output", "sample", "STEPPERS",
           "SelfGuidance", "Replacement", "CONDITIONERS", "ConditionerConfigs", "Observation", "Prior", "run_conditioner"]
