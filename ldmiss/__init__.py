"""LDMiss: latent diffusion for missing data.

Learn generative models from incomplete images and impute their missing pixels:
a robust β-VAE trained on masked, zero-imputed images, a VP-SDE diffusion prior in its latent
space, and self-guided imputation; plus the pixel-space baselines and the poster's evaluation.
"""
__version__ = "0.1.0"

from .inputs import InputError  # noqa: E402
from .methods import (  # noqa: E402
                      REGISTRY,
                      AmbientDiffusion,
                      ArtifactError,
                      DiEM,
                      DiffPuter,
                      Imputation,
                      LDMiss,
                      MeanImputer,
                      PixelDDPM,
                      VAEImputer,
                      load_method,
)
from .missing import apply_mask, make_mask, mcar_mask  # noqa: E402

__all__ = ["__version__", "InputError", "REGISTRY", "AmbientDiffusion", "ArtifactError", "DiEM", "DiffPuter",
           "Imputation", "LDMiss", "MeanImputer", "PixelDDPM", "VAEImputer", "load_method", "apply_mask", "make_mask",
           "mcar_mask"]
