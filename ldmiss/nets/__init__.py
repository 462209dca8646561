"""Networks: they map tensors to tensors and know nothing about SDEs, masks or training."""
from .classifier import MNISTClassifier
from .mlp import ResMLP
from .unet import UNet
from .vae import VAE

EPS_NETS = {"mlp": ResMLP, "unet": UNet}


def build_eps_net(kind: str, shape, **kwargs):
    """ε-network by name (``mlp`` for latents, ``unet`` for images) for inputs of ``shape`` (C×H×W)."""
    if kind not in EPS_NETS:
        raise ValueError(f"unknown ε-network {kind!r}; choose from {sorted(EPS_NETS)}")
    try:
        return EPS_NETS[kind](tuple(shape), **kwargs)
    except TypeError as exc:  # a misspelt `net` option: say which options exist
        import inspect
        valid = [p for p in inspect.signature(EPS_NETS[kind]).parameters if p != "shape"]
        raise ValueError(f"invalid option for the {kind!r} ε-network ({exc}); valid: {valid}") from exc


__all__ = ["MNISTClassifier", "ResMLP", "UNet", "VAE", "EPS_NETS", "build_eps_net"]
