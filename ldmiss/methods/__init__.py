"""Methods: each composes networks, the diffusion core and training, and owns its artifacts.

The registry: one import per method module below (``@register`` on its class registers it).
"""
from .ambient import AmbientDiffusion
from .artifact import ArtifactError, load_method, read_artifact_config
from .base import Method, NotFittedError
from .classical import Biharmonic, Neighbours
from .ddpm import PixelDDPM, PixelDiffusionConfig
from .diem import DiEM
from .diffputer import DiffPuter, DiffPuterConfig
from .ldmiss import LDMiss, LDMissConfig, LDMissEM
from .miwae import MIWAE, NotMIWAE
from .registry import REGISTRY, get_method_class, register
from .result import Cost, Imputation
from .simple import MeanImputer, VAEImputer

__all__ = ["REGISTRY", "ArtifactError", "Cost", "Imputation", "Method", "NotFittedError", "get_method_class",
           "load_method", "read_artifact_config", "register", "PixelDDPM", "PixelDiffusionConfig", "DiffPuter",
           "DiffPuterConfig", "LDMiss", "MIWAE", "NotMIWAE", "LDMissConfig", "LDMissEM", "MeanImputer", "VAEImputer",
           "AmbientDiffusion", "DiEM",
           "Biharmonic", "Neighbours"]
