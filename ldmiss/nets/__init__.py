"""Networks: they map tensors to tensors and know nothing about SDEs, masks or training."""
from ..errors import UsageError
from .classifier import ImageClassifier, MNISTClassifier
from .mlp import ResMLP
from .unet import UNet
from .vae import VAE

EPS_NETS = {"mlp": ResMLP, "unet": UNet}


def check_net_options(kind: str, options: dict, path: str = "net") -> None:
    """Fail before training on an unknown ε-network or a misspelt/mistyped option of it."""
    import inspect

    from ..config import ConfigError
    if kind not in EPS_NETS:
        raise ConfigError(f"eps_net: unknown ε-network {kind!r}; choose from {sorted(EPS_NETS)}")
    params = {k: p for k, p in inspect.signature(EPS_NETS[kind]).parameters.items() if k != "shape"}
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(f"unknown option(s) {[f'{path}.{u}' for u in unknown]} for the {kind!r} ε-network; "
                          f"valid: {sorted(params)}")
    choices = getattr(EPS_NETS[kind], "CHOICES", {})  # string options with a fixed set of values
    for key, value in options.items():
        default = params[key].default
        if key in choices and value not in choices[key]:
            raise ConfigError(f"{path}.{key}: expected one of {list(choices[key])}, got {value!r}")
        if isinstance(default, bool) or default is inspect.Parameter.empty:
            continue
        if isinstance(default, int) and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ConfigError(f"{path}.{key}: expected a positive int, got {value!r}")
        if isinstance(default, tuple) and not (isinstance(value, (list, tuple))
                                               and all(isinstance(v, int) and v > 0 for v in value)):
            raise ConfigError(f"{path}.{key}: expected a list of positive ints, got {value!r}")


def build_eps_net(kind: str, shape, **kwargs):
    """ε-network by name (``mlp`` for latents, ``unet`` for images) for inputs of ``shape`` (C×H×W)."""
    if kind not in EPS_NETS:
        raise UsageError(f"unknown ε-network {kind!r}; choose from {sorted(EPS_NETS)}")
    try:
        return EPS_NETS[kind](tuple(shape), **kwargs)
    except TypeError as exc:  # a misspelt `net` option: say which options exist
        import inspect
        valid = [p for p in inspect.signature(EPS_NETS[kind]).parameters if p != "shape"]
        raise UsageError(f"invalid option for the {kind!r} ε-network ({exc}); valid: {valid}") from exc


__all__ = ["ImageClassifier", "MNISTClassifier", "ResMLP", "UNet", "VAE", "EPS_NETS", "build_eps_net", "check_net_options"]
