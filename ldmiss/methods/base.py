"""The Method protocol every model implements, its artifact format, and the registry.

A method is fitted on incomplete data (x̃, obs_mask), can ``impute`` (and ``sample`` if it is
generative), and saves to a directory holding ``config.json`` (method name, config, image shape,
metadata such as timings, weights checksum) and ``weights.safetensors``. ``load_method(dir)``
rebuilds any method from that directory alone. Subclasses implement the tensor-level hooks
(``_build``, ``_fit``, ``_sample``, ``_impute``); this class owns validation, seeding, conversion
to NumPy at the boundary, timing and I/O.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .. import __version__
from ..config import ConfigError, from_dict, leaves, merge, to_dict, under
from .. import rng
from ..device import resolve_device
from ..nets import check_net_options
from ..nets.precision import resolve_auto
from ..inputs import InputError, prepare_images, warn_if_unobserved

CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.safetensors"
ARTIFACT_FORMAT = "ldmiss-artifact-v1"


class ArtifactError(RuntimeError):
    """A model directory that is missing, incomplete or corrupted."""


class NotFittedError(RuntimeError):
    pass


@dataclass
class Imputation:
    """Imputed images in [0, 1] (N×C×H×W). ``mean`` is the point estimate (the mean of the draws);
    ``draws`` (D×N×C×H×W) and ``std`` (per-pixel spread over draws) are set when draws > 1."""

    mean: np.ndarray
    draws: np.ndarray | None = None
    std: np.ndarray | None = None

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel central ``level`` interval (lo, hi) over the draws (needs draws ≥ 2)."""
        if self.draws is None:
            raise ValueError("an interval needs multiple imputation: impute(..., draws=D) with D ≥ 2")
        from ..metrics.uncertainty import central_interval
        return central_interval(self.draws, level)


REGISTRY: dict[str, type["Method"]] = {}


def register(cls):
    REGISTRY[cls.name] = cls
    return cls


def get_method_class(name: str) -> type["Method"]:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(REGISTRY)}")
    return REGISTRY[name]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Method:
    name: ClassVar[str]
    config_cls: ClassVar[type]
    generative: ClassVar[bool] = True
    impute_modes: ClassVar[tuple[str, ...]] = ("default",)  # what the sweep evaluates; see supported_modes()
    relative_cost: ClassVar[int] = 1  # scheduling hint for parallel sweeps (longest first)
    autoencoder: ClassVar[bool] = False  # has ``reconstruct`` (decode ∘ encode), see vae_ops.Autoencoded
    stochastic: ClassVar[bool] = True  # False: every imputation draw is the same, so it is computed once

    def __init__(self, config=None, device: str = "auto", **overrides):
        config = self.build_config(config, **overrides)
        self.device = resolve_device(device)
        # "auto" precisions become what runs on this device, so the saved config says what ran
        self.config = resolve_auto(config, self.device)
        self.image_shape: tuple[int, int, int] | None = None
        self.meta: dict = {}

    @classmethod
    def build_config(cls, config=None, **overrides):
        """The checked config from a config object or dict (default: the method's defaults) and
        keyword overrides; ``precision = "auto"`` is left for the device to resolve."""
        cfg = config if config is not None else cls.config_cls()
        if isinstance(cfg, dict):
            cfg = from_dict(cls.config_cls, cfg, cls.name)
        cfg = merge(cfg, overrides, cls.name) if overrides else cfg
        cls.check_config(cfg)
        return cfg

    @classmethod
    def check_config(cls, config) -> None:
        """Everything about a config that its dataclass types cannot say (raises ConfigError).
        Called on every construction, so a sweep can check all its methods before the first run."""
        if hasattr(config, "eps_net"):
            check_net_options(config.eps_net, config.net, f"{cls.name}.net")

    @classmethod
    def validate_overrides(cls, overrides: dict) -> None:
        """Raise ConfigError unless ``overrides`` make a usable config for this method."""
        cls.check_config(merge(cls.config_cls(), overrides, cls.name))

    def set_inference_options(self, overrides: dict) -> "Method":
        """Change how a fitted model samples and imputes (``inference_options()``: its samplers,
        ``guidance.*``, ``impute.<conditioner>.*``, …), checked like any config; options that shape the
        networks or their training are refused, since they would not match the weights."""
        allowed = self.inference_options()
        for path, _ in leaves(overrides):
            if not under(path, allowed):
                raise ConfigError(f"{self.name}: {path!r} is not an inference option of a fitted model; "
                                  f"allowed: {', '.join(p + '.*' for p in allowed) or 'none'}")
        self.config = merge(self.config, overrides, self.name)
        self.check_config(self.config)
        self._config_changed()
        return self

    # Options the fit reads only because it samples (DiffPuter's E-step imputes the training set),
    # which a fitted model may still change for later sampling and imputation.
    SAMPLED_DURING_FIT: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def inference_options(cls) -> tuple[str, ...]:
        """Dotted config paths a fitted model may change: what its fit never reads (``FIT_INDEPENDENT``)
        and what it reads only to sample (``SAMPLED_DURING_FIT``)."""
        return (*cls.FIT_INDEPENDENT, *cls.SAMPLED_DURING_FIT)

    # Config options (dotted paths) that this method's fit never reads — only sampling and imputation
    # do — so two configs that differ only in them train the same model: the sweep's fit cache
    # (``fit_settings``) ignores them, and a cached fit takes the new values (``adopt_config``).
    # Conservative by default (every option matters); a subclass lists only what its _fit cannot see
    # (DiffPuter's E-step samples during the fit, so its sampler is not among them).
    # tests/test_methods.py fits with each of them changed and checks the weights are identical.
    FIT_INDEPENDENT: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def fit_settings(cls, config) -> dict:
        """``config`` as a dict without the ``FIT_INDEPENDENT`` options: what a fit depends on."""
        out = to_dict(config)
        for path in cls.FIT_INDEPENDENT:
            *parents, leaf = path.split(".")
            node = out
            for key in parents:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(leaf, None)
        return out

    def adopt_config(self, config) -> "Method":
        """Take ``config`` for a fitted model whose fit it would have made identically (it differs
        only in ``FIT_INDEPENDENT`` options); anything else is refused, since the weights would not
        match it."""
        if self.fit_settings(config) != self.fit_settings(self.config):
            raise ValueError(f"{self.name}: this config differs from the fitted one in options the fit depends on")
        self.config = config
        self._config_changed()
        return self

    def _config_changed(self) -> None:
        """Hook: ``self.config`` was replaced (``set_inference_options``, ``adopt_config``); parts built
        from the old one that keep a reference to it must take the new one."""

    @classmethod
    def supported_modes(cls) -> tuple[str, ...]:
        """Every imputation mode ``impute`` accepts (diffusion methods: every conditioner that fits)."""
        return tuple(cls.impute_modes)

    def _train_options(self, stage: str) -> dict:
        """``train()``'s checkpoint options for one training stage of this fit (none without a dir)."""
        folder = getattr(self, "checkpoint_dir", None)
        if folder is None:
            return {}
        return {"checkpoint": Path(folder) / f"{stage}.ckpt", "checkpoint_every": self.checkpoint_every}

    # ---- hooks for subclasses (tensors in [0, 1], already validated) ----
    def _build(self, image_shape: tuple[int, int, int]) -> None:
        raise NotImplementedError

    def _fit(self, x: torch.Tensor, obs_mask: torch.Tensor, generator: torch.Generator, progress: bool) -> None:
        raise NotImplementedError

    def _sample(self, n: int, generator: torch.Generator, progress: bool) -> torch.Tensor:
        raise NotImplementedError

    def _impute(self, x: torch.Tensor, obs_mask: torch.Tensor, mode: str, generator: torch.Generator,
                progress: bool) -> torch.Tensor:
        """One draw of the missing pixels (the caller restores observed pixels)."""
        raise NotImplementedError

    def _reconstruct(self, x: torch.Tensor, obs_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _parts(self) -> dict[str, "torch.nn.Module | torch.Tensor"]:
        """Everything that is saved: networks (their state_dict) and plain tensors, by name."""
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, part in self._parts().items():
            if isinstance(part, torch.Tensor):
                out[name] = part
            else:
                out.update({f"{name}.{k}": v for k, v in part.state_dict().items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        expected = set(self.state_tensors())
        if set(tensors) != expected:
            missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise ArtifactError(f"weights do not match the config (missing {missing[:5]}, unexpected {extra[:5]})")
        for name, part in self._parts().items():
            if isinstance(part, torch.Tensor):
                part.copy_(tensors[name])
            else:
                prefix = name + "."
                part.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
                part.to(self.device).eval().requires_grad_(False)

    # ---- public API ----
    @property
    def fitted(self) -> bool:
        return self.image_shape is not None and self.meta.get("fitted", False)

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError(f"{self.name}: call fit() (or {type(self).__name__}.load(dir)) first")

    def fit(self, x, obs_mask=None, *, seed: int = 0, progress: bool = True, cache_dir=None, checkpoint_dir=None,
            checkpoint_every: float = 300.0):
        """Fit on incomplete images: NaN in ``x`` and/or ``obs_mask`` = 0 mark missing pixels.

        ``cache_dir``: where components that several methods train identically (the β-VAE of
        ``ldmiss`` and ``vae``) are kept and reused; a reuse is exact (same weights and random state
        as training it again), so it only saves time. ``checkpoint_dir``: where each training loop
        saves its state every ``checkpoint_every`` seconds; a fit killed and called again with the
        same data, seed and directory resumes there (bit-identical on the CPU)."""
        self.cache_dir, self.checkpoint_dir, self.checkpoint_every = cache_dir, checkpoint_dir, checkpoint_every
        xt, m = prepare_images(x, obs_mask, fill_value=getattr(self.config, "fill_value", 0.0))
        if m.sum() == 0:
            raise InputError("x: every pixel is missing; nothing to learn from")
        self.image_shape = tuple(xt.shape[1:])
        # the networks' initialisation draws from torch's global RNG: seeded here, and the caller's
        # global state restored afterwards; every other draw of the fit comes from its own generator
        with rng.isolated(seed, self.device):
            self._build(self.image_shape)
            start = time.perf_counter()
            self._fit(xt, m, rng.generator(seed), progress)
        self.meta.update(fitted=True, fit_seconds=time.perf_counter() - start, fit_seed=seed,
                         train_size=int(xt.shape[0]), train_missing_rate=float(1 - m.mean()))
        return self

    def shared_fit_seconds(self) -> float:
        """Training seconds of the components this fit took from ``cache_dir`` (the β-VAE that
        ``ldmiss`` and ``vae`` share), read from the ``meta[<part>_fit]`` records the training
        helpers leave (``cached`` = taken from the cache). They were spent by whichever fit trained
        the part first, so ``meta["fit_seconds"]`` leaves them out; the sum of the two is this fit's
        whole cost, as if nothing had been shared."""
        return sum(info.get("seconds", 0.0) for key, info in self.meta.items()
                   if key.endswith("_fit") and isinstance(info, dict) and info.get("cached"))

    def sample(self, n: int, *, seed: int = 0, progress: bool = True) -> np.ndarray:
        """``n`` unconditional samples in [0, 1], N×C×H×W."""
        self._check_fitted()
        if not self.generative:
            raise NotImplementedError(f"method {self.name!r} is not generative; it can only impute")
        if int(n) < 1:
            raise InputError(f"n must be ≥ 1, got {n}")
        with torch.inference_mode(), rng.isolated(None, self.device):
            out = self._sample(int(n), rng.generator(seed), progress)
        return out.clamp(0, 1).cpu().numpy()

    def impute(self, x, obs_mask=None, *, draws: int = 1, mode: str | None = None, seed: int = 0,
               progress: bool = True, steps: int | None = None) -> Imputation:
        """Fill missing pixels; observed pixels are returned unchanged.

        ``draws`` > 1 gives multiple imputation: ``mean`` is the posterior-mean estimate and ``std``
        the per-pixel spread (``interval(level)`` its central intervals). ``mode``: one of
        :meth:`supported_modes` (for the diffusion methods, any conditioner of
        :mod:`ldmiss.diffusion.conditioners`); ``steps`` overrides its number of steps (cost ∝ steps).
        Images with no observed pixel are imputed from the prior (warning).
        """
        self._check_fitted()
        mode = mode or self.impute_modes[0]
        if mode not in self.supported_modes():
            raise ValueError(f"{self.name}: unknown imputation mode {mode!r}; choose from {list(self.supported_modes())}")
        if int(draws) < 1:
            raise InputError(f"draws must be ≥ 1, got {draws}")
        hook_options = {}
        if steps is not None:
            if not hasattr(self, "impute_cost"):
                raise InputError(f"{self.name}: steps applies to the diffusion methods only")
            if int(steps) < 1:
                raise InputError(f"steps must be ≥ 1, got {steps}")
            hook_options["steps"] = int(steps)
        xt, m = prepare_images(x, obs_mask, image_shape=self.image_shape,
                               fill_value=getattr(self.config, "fill_value", 0.0))
        warn_if_unobserved(m)
        gen = rng.generator(seed)
        outs = []
        with torch.no_grad(), rng.isolated(None, self.device):  # guidance re-enables gradients for its own step only
            for _ in range(int(draws) if self.stochastic else 1):
                xhat = self._impute(xt, m, mode, gen, progress, **hook_options).clamp(0, 1).cpu()
                outs.append(m * xt + (1 - m) * xhat)
            if not self.stochastic:
                outs = outs * int(draws)  # the same draw, D times: std 0, as it would be computed
        stack = torch.stack(outs)
        if draws == 1:
            return Imputation(mean=stack[0].numpy())
        return Imputation(mean=stack.mean(0).numpy(), draws=stack.numpy(), std=stack.std(0).numpy())

    def reconstruct(self, x, obs_mask=None) -> np.ndarray:
        """decode(encode(x̃, m)) in [0, 1] for methods with an autoencoder (no pixel restored)."""
        self._check_fitted()
        if not self.autoencoder:
            raise NotImplementedError(f"method {self.name!r} has no autoencoder to reconstruct with")
        xt, m = prepare_images(x, obs_mask, image_shape=self.image_shape,
                               fill_value=getattr(self.config, "fill_value", 0.0))
        with torch.no_grad():
            return self._reconstruct(xt, m).clamp(0, 1).cpu().numpy()

    # ---- artifacts ----
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``weights.safetensors`` into ``directory`` (files replaced atomically)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_tensors().items()}
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".safetensors")
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files; artifacts are meant to be shared
        save_file(tensors, tmp)
        digest = _sha256(Path(tmp))
        os.replace(tmp, directory / WEIGHTS_FILE)
        doc = {"format": ARTIFACT_FORMAT, "ldmiss_version": __version__, "method": self.name,
               "image_shape": list(self.image_shape), "config": to_dict(self.config), "meta": self.meta,
               "weights_sha256": digest}
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".json")
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2, default=float)
        os.replace(tmp, directory / CONFIG_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "Method":
        method = load_method(directory, device=device)
        if cls is not Method and not isinstance(method, cls):
            raise ArtifactError(f"{directory} holds a {method.name!r} model, not {cls.name!r}")
        return method


def read_artifact_config(directory: str | Path) -> dict:
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"model directory {directory} does not exist")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory} is not an ldmiss model directory: {CONFIG_FILE} is missing")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is corrupted (not valid JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{path} is not an {ARTIFACT_FORMAT} config")
    for key in ("method", "image_shape", "config", "weights_sha256"):
        if key not in doc:
            raise ArtifactError(f"{path} lacks the field {key!r}")
    return doc


def load_method(directory: str | Path, device: str = "auto") -> Method:
    """Rebuild a fitted method from its directory (config.json + weights.safetensors)."""
    directory = Path(directory)
    doc = read_artifact_config(directory)
    try:
        cls = get_method_class(doc["method"])
    except ValueError as exc:
        raise ArtifactError(f"{directory}: {exc}") from exc
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"{directory}: {WEIGHTS_FILE} is missing")
    if _sha256(weights) != doc["weights_sha256"]:
        raise ArtifactError(f"{weights} is corrupted: its SHA-256 does not match the one in {CONFIG_FILE}")
    try:
        method = cls(from_dict(cls.config_cls, doc["config"]), device=device)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{directory}: invalid config ({exc})") from exc
    method.image_shape = tuple(doc["image_shape"])
    method._build(method.image_shape)
    try:
        tensors = load_file(str(weights))
        method.load_state_tensors(tensors)
    except Exception as exc:
        raise ArtifactError(f"{weights} could not be loaded into a {doc['method']!r} model: {exc}") from exc
    method.meta = dict(doc.get("meta", {}))
    method.meta["fitted"] = True
    return method
