"""Diffusion core shared by every method: SDE, losses, samplers, conditioners. Knows no networks."""
from .conditioners import CONDITIONERS, Observation, Prior, Replacement, SelfGuidance, conditioner_configs, run_conditioner
from .losses import LossConfig, dsm_loss
from .normalizer import LatentNormalizer
from .parameterization import PREDICTIONS, eps_from_output
from .samplers import STEPPERS, SamplerConfig, register_sampler, sample
from .sde import VPSDE, SDEConfig

__all__ = ["VPSDE", "SDEConfig", "dsm_loss", "LossConfig", "LatentNormalizer", "PREDICTIONS", "eps_from_output",
           "sample", "STEPPERS", "SamplerConfig", "register_sampler", "SelfGuidance", "Replacement", "CONDITIONERS",
           "conditioner_configs", "Observation", "Prior", "run_conditioner"]
