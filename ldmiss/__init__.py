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
    import importlib
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:  # a submodule (``ldmiss.methods`` …), as eager imports used to make them available
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'ldmiss' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
