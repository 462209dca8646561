"""Methods: each composes networks, the diffusion core and training, and owns its artifacts.

The registry: one import per method module (``@register`` on the class registers it).
"""
from .artifact import ArtifactError, load_method, read_artifact_config
from .base import Method, NotFittedError
from .ddpm import PixelDDPM, PixelDiffusionConfig  # noqa: E402
from .diffputer import DiffPuter, DiffPuterConfig  # noqa: E402
from .ldmiss import LDMiss, LDMissConfig  # noqa: E402  (the registry, in the order methods are listed)
from .registry import REGISTRY, get_method_class, register
from .result import Cost, Imputation
from .simple import MeanImputer, VAEImputer  # noqa: E402

__all__ = ["REGISTRY", "ArtifactError", "Cost", "Imputation", "Method", "NotFittedError", "get_method_class",
           "load_method", "read_artifact_config", "register", "PixelDDPM", "PixelDiffusionConfig", "DiffPuter",
           "DiffPuterConfig", "LDMiss", "LDMissConfig", "MeanImputer", "VAEImputer"]
