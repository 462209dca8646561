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


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ldmiss' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
