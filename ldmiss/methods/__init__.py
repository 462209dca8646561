"""Methods: each composes networks, the diffusion core and training, and owns its artifacts."""
from .base import REGISTRY, ArtifactError, Imputation, Method, NotFittedError, get_method_class, load_method
from .ddpm import PixelDDPM, PixelDiffusionConfig
from .diffputer import DiffPuter, DiffPuterConfig
from .ldmiss import LDMiss, LDMissConfig
from .simple import MeanImputer, VAEImputer

__all__ = ["REGISTRY", "ArtifactError", "Imputation", "Method", "NotFittedError", "get_method_class",
           "load_method", "PixelDDPM", "PixelDiffusionConfig", "DiffPuter", "DiffPuterConfig", "LDMiss",
           "LDMissConfig", "MeanImputer", "VAEImputer"]
