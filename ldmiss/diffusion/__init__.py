"""Diffusion core shared by every method: SDE, losses, samplers, guidance. Knows no networks."""
from .guidance import Replacement, SelfGuidance
from .losses import dsm_loss
from .samplers import STEPPERS, sample
from .sde import VPSDE

__all__ = ["VPSDE", "dsm_loss", "sample", "STEPPERS", "SelfGuidance", "Replacement"]
