"""LDMiss: latent diffusion for missing data.

Learn generative models from incomplete images and impute their missing pixels:
a robust β-VAE trained on masked, zero-imputed images, a VP-SDE diffusion prior in its latent
space, and self-guided imputation; plus the pixel-space baselines and the poster's evaluation.
"""
__version__ = "0.1.0"

# The public names load on first use (PEP 562), so `import ldmiss` — and `ldmiss --help` — does not
# import torch until something needs it.
_EXPORTS = {
    "InputError": "inputs", "REGISTRY": "methods", "AmbientDiffusion": "methods", "ArtifactError": "methods",
    "DiEM": "methods", "DiffPuter": "methods", "Imputation": "methods", "LDMiss": "methods", "LDMissEM": "methods",
    "MeanImputer": "methods", "PixelDDPM": "methods", "VAEImputer": "methods", "load_method": "methods",
    "apply_mask": "missing", "make_mask": "missing", "mcar_mask": "missing",
}

__all__ = ["__version__", *_EXPORTS]


from .lazy import lazy_exports  # noqa: E402  (after __version__, which --version reads)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
