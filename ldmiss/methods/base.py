"""The Method protocol every model implements, and its config policy.

A method is fitted on incomplete data (x̃, obs_mask), can ``impute`` (and ``sample`` if it is
generative), and saves to a directory (methods/artifact.py). Subclasses implement the tensor-level
hooks (``_build``, ``_fit``, ``_sample``, ``_impute``, ``_parts``); this class owns validation,
seeding, conversion to NumPy at the boundary and timing. What a method can do is declared by class
attributes (``generative``, ``autoencoder``, ``stochastic``, ``conditionable``), never found by
probing. The other jobs live beside it: the result type (result.py), the registry (registry.py),
the artifact format (artifact.py), how a fit is run (fit_options.py) and what identifies a fit
(fit_identity.py).
"""
from __future__ import annotations

import secrets
import time
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from .. import rng
from ..config import ConfigError, from_dict, leaves, merge, rename_keys, under
from ..device import resolve_device
from ..errors import Unsupported, UsageError, UserError
from ..inputs import InputError, prepare_images, warn_if_unobserved
from ..nets import check_net_options
from ..nets.precision import resolve_auto
from . import artifact
from .fit_identity import fit_settings
from .fit_options import FitOptions
from .result import Cost, Imputation


class NotFittedError(UserError, RuntimeError):
    """``sample``/``impute`` before ``fit`` or ``load``."""


class Method:
    name: ClassVar[str]
    config_cls: ClassVar[type]
    # ---- capabilities (declared; the evaluation, the CLI and the tests read them) ----
    generative: ClassVar[bool] = True  # has ``sample``
    autoencoder: ClassVar[bool] = False  # has ``reconstruct`` (decode ∘ encode), see vae_ops.Autoencoded
    stochastic: ClassVar[bool] = True  # False: every imputation draw is the same, so it is computed once
    conditionable: ClassVar[bool] = False  # a diffusion prior: imputes with any conditioner, ``steps`` applies
    impute_modes: ClassVar[tuple[str, ...]] = ("default",)  # what the sweep evaluates; see supported_modes()
    relative_cost: ClassVar[int] = 1  # scheduling hint for parallel sweeps (longest first)
    # how an image with no observed pixel is filled, for the warning ``impute`` gives about it
    unobserved_fill: ClassVar[str] = "from the unconditional prior (a sample, not a reconstruction)"
    # Config options (dotted paths) that this method's fit never reads — only sampling and imputation
    # do — so two configs that differ only in them train the same model: they are left out of the fit's
    # identity (fit_identity.py), and a cached fit takes the new values (``adopt_config``).
    # Conservative by default (every option matters). tests/test_methods.py fits with each of them
    # changed and checks the weights are identical.
    FIT_INDEPENDENT: ClassVar[tuple[str, ...]] = ()
    # Options the fit reads only because it samples (DiffPuter's E-step imputes the training set),
    # which a fitted model may still change for later sampling and imputation.
    SAMPLED_DURING_FIT: ClassVar[tuple[str, ...]] = ()
    # Tensor parts (``_parts`` names) added after a method was first released: an artifact saved
    # before may lack them, and they then keep the value ``_build`` gave them (the method must cope).
    OPTIONAL_PARTS: ClassVar[tuple[str, ...]] = ()
    # Old spellings of config keys (dotted path → today's), accepted with a DeprecationWarning in
    # overrides and upgraded silently in saved models and stored run settings of 0.1.0.
    LEGACY_KEYS: ClassVar[dict[str, str]] = {}

    def __init__(self, config=None, device: str = "auto", **overrides):
        config = self.build_config(config, **overrides)
        self.device = resolve_device(device)
        # "auto" precisions become what runs on this device, so the saved config says what ran
        self.config = resolve_auto(config, self.device)
        self.image_shape: tuple[int, int, int] | None = None
        self.meta: dict = {}

    # ---- config policy ----
    @classmethod
    def upgrade_config(cls, data: dict) -> dict:
        """A config dict with 0.1.0's key spellings (``LEGACY_KEYS``) moved to today's."""
        return rename_keys(data, cls.LEGACY_KEYS)[0] if cls.LEGACY_KEYS else data

    @classmethod
    def _upgrade_overrides(cls, overrides: dict) -> dict:
        upgraded, found = rename_keys(overrides, cls.LEGACY_KEYS) if cls.LEGACY_KEYS else (overrides, [])
        for old in found:
            warnings.warn(f"{cls.name}: the option {old!r} is now {cls.LEGACY_KEYS[old]!r}; the old spelling "
                          "will be removed in a later version", DeprecationWarning, stacklevel=4)
        return upgraded

    @classmethod
    def build_config(cls, config=None, **overrides):
        """The checked config from a config object or dict (default: the method's defaults) and
        keyword overrides; ``precision = "auto"`` is left for the device to resolve."""
        cfg = config if config is not None else cls.config_cls()
        if isinstance(cfg, dict):
            cfg = from_dict(cls.config_cls, cls._upgrade_overrides(cfg), cls.name)
        cfg = merge(cfg, cls._upgrade_overrides(overrides), cls.name) if overrides else cfg
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
        cls.check_config(merge(cls.config_cls(), cls._upgrade_overrides(overrides), cls.name))

    @classmethod
    def inference_options(cls) -> tuple[str, ...]:
        """Dotted config paths a fitted model may change: what its fit never reads (``FIT_INDEPENDENT``)
        and what it reads only to sample (``SAMPLED_DURING_FIT``)."""
        return (*cls.FIT_INDEPENDENT, *cls.SAMPLED_DURING_FIT)

    def set_inference_options(self, overrides: dict) -> "Method":
        """Change how a fitted model samples and imputes (``inference_options()``: its samplers,
        ``impute.<conditioner>.*``, …), checked like any config; options that shape the networks or
        their training are refused, since they would not match the weights."""
        overrides = self._upgrade_overrides(overrides)
        allowed = self.inference_options()
        for path, _ in leaves(overrides):
            if not under(path, allowed):
                raise ConfigError(f"{self.name}: {path!r} is not an inference option of a fitted model; "
                                  f"allowed: {', '.join(p + '.*' for p in allowed) or 'none'}")
        self.config = merge(self.config, overrides, self.name)
        self.check_config(self.config)
        self._config_changed()
        return self

    @classmethod
    def fit_independent(cls, config) -> tuple[str, ...]:
        """The options ``config``'s fit never reads: ``FIT_INDEPENDENT``, unless a setting makes the fit
        sample (LDMiss's latent EM imputes the training set), which a method says by overriding this."""
        return cls.FIT_INDEPENDENT

    @classmethod
    def fit_settings(cls, config) -> dict:
        """``config`` as a dict without the ``FIT_INDEPENDENT`` options: what a fit depends on."""
        return fit_settings(cls, config)

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

    # ---- hooks for subclasses (tensors in [0, 1], already validated) ----
    def _adapt_to_data(self, x: torch.Tensor, obs_mask: torch.Tensor) -> None:
        """Settle settings that depend on the training data (``"auto"`` ones) before ``_build``."""

    def _build(self, image_shape: tuple[int, int, int]) -> None:
        raise NotImplementedError

    def _fit(self, x: torch.Tensor, obs_mask: torch.Tensor, generator: torch.Generator, progress: bool,
             options: FitOptions) -> None:
        raise NotImplementedError

    def _sample(self, n: int, generator: torch.Generator, progress: bool) -> torch.Tensor:
        raise NotImplementedError

    def _impute(self, x: torch.Tensor, obs_mask: torch.Tensor, mode: str, generator: torch.Generator,
                progress: bool, steps: int | None) -> tuple[torch.Tensor, Cost]:
        """One draw of the missing pixels (the caller restores observed pixels) and its cost per
        image; ``steps`` (conditionable methods only) overrides the solver's number of steps."""
        raise NotImplementedError

    def _reconstruct(self, x: torch.Tensor, obs_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decoder_floor(self, x: torch.Tensor, obs_mask: torch.Tensor, steps: int) -> torch.Tensor:
        """Autoencoders: the decoder's best images for the complete ``x`` on the pixels ``obs_mask`` hides."""
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
        artifact.load_state_tensors(self, tensors)

    # ---- public API ----
    @property
    def fitted(self) -> bool:
        return self.image_shape is not None and self.meta.get("fitted", False)

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError(f"{self.name}: call fit() (or {type(self).__name__}.load(dir)) first")

    @staticmethod
    def _whole(name: str, value, minimum: int) -> int:
        """``value`` as an int ≥ ``minimum`` (2.5, "3" and True are refused, not truncated or parsed)."""
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"{name} must be a whole number, got {value!r} ({type(value).__name__})")
        if int(value) < minimum:
            raise InputError(f"{name} must be ≥ {minimum}, got {value}")
        return int(value)

    @classmethod
    def _seed(cls, seed) -> int:
        """A run's seed: a whole number ≥ 0, or None for a fresh one (not reproducible)."""
        if seed is None:
            return secrets.randbelow(2**31)
        return cls._whole("seed", seed, 0)

    def _prepare(self, x, obs_mask, **kw):
        return prepare_images(x, obs_mask, fill_value=getattr(self.config, "fill_value", 0.0), **kw)

    def fit(self, x, obs_mask=None, *, seed: int = 0, progress: bool = True, cache_dir=None, checkpoint_dir=None,
            checkpoint_every: float = 300.0):
        """Fit on incomplete images: NaN in ``x`` and/or ``obs_mask`` = 0 mark missing pixels.

        ``cache_dir``: where components that several methods train identically (the β-VAE of
        ``ldmiss`` and ``vae``) are kept and reused; a reuse is exact (same weights and random state
        as training it again), so it only saves time. ``checkpoint_dir``: where each training loop
        saves its state every ``checkpoint_every`` seconds; a fit killed and called again with the
        same data, seed and directory resumes there (bit-identical on the CPU)."""
        seed = self._seed(seed)
        options = FitOptions(Path(cache_dir) if cache_dir is not None else None,
                             Path(checkpoint_dir) if checkpoint_dir is not None else None, checkpoint_every)
        xt, m = self._prepare(x, obs_mask)
        if m.sum() == 0:
            raise InputError("x: every pixel is missing; nothing to learn from")
        self.image_shape = tuple(xt.shape[1:])
        # the networks' initialisation draws from torch's global RNG: seeded here, and the caller's
        # global state restored afterwards; every other draw of the fit comes from its own generator
        self._adapt_to_data(xt, m)
        with rng.isolated(seed, self.device):
            self._build(self.image_shape)
            start = time.perf_counter()
            self._fit(xt, m, rng.generator(seed), progress, options)
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
            raise Unsupported(f"method {self.name!r} is not generative; it can only impute")
        n, seed = self._whole("n", n, 1), self._seed(seed)
        with torch.inference_mode(), rng.isolated(None, self.device):
            out = self._sample(n, rng.generator(seed), progress)
        return out.clamp(0, 1).cpu().numpy()

    def impute(self, x, obs_mask=None, *, draws: int = 1, mode: str | None = None, seed: int = 0,
               progress: bool = True, steps: int | None = None) -> Imputation:
        """Fill missing pixels; observed pixels are returned unchanged.

        ``draws`` > 1 gives multiple imputation: ``mean`` is the posterior-mean estimate and ``std``
        the per-pixel spread (``interval(level)`` its central intervals). ``mode``: one of
        :meth:`supported_modes` (for the diffusion methods, any conditioner of
        :mod:`ldmiss.diffusion.conditioners`); ``steps`` overrides its number of steps (cost ∝ steps).
        ``cost`` of the result is the work of one draw per image. Images with no observed pixel are
        imputed from the prior (warning).
        """
        self._check_fitted()
        mode = mode or self.impute_modes[0]
        if mode not in self.supported_modes():
            raise UsageError(f"{self.name}: unknown imputation mode {mode!r}; choose from {list(self.supported_modes())}")
        draws, seed = self._whole("draws", draws, 1), self._seed(seed)
        if steps is not None:
            if not self.conditionable:
                raise InputError(f"{self.name}: steps applies to the diffusion methods only")
            steps = self._whole("steps", steps, 1)
        xt, m = self._prepare(x, obs_mask, image_shape=self.image_shape)
        warn_if_unobserved(m, self.unobserved_fill)
        gen = rng.generator(seed)
        outs, cost = [], Cost()
        with torch.no_grad(), rng.isolated(None, self.device):  # guidance re-enables gradients for its own step only
            for _ in range(draws if self.stochastic else 1):
                xhat, cost = self._impute(xt, m, mode, gen, progress, steps)
                outs.append(m * xt + (1 - m) * xhat.clamp(0, 1).cpu())
            if not self.stochastic:
                outs = outs * draws  # the same draw, D times: std 0, as it would be computed
        stack = torch.stack(outs)
        if draws == 1:
            return Imputation(mean=stack[0].numpy(), cost=cost, obs_mask=m.numpy())
        # the mean of D copies of an observed value need not be that value in floating point: restore it
        mean = m * xt + (1 - m) * stack.mean(0)
        return Imputation(mean=mean.numpy(), draws=stack.numpy(), std=stack.std(0).numpy(), cost=cost,
                          obs_mask=m.numpy(), calibration=self.calibration(mode))

    def calibration(self, mode: str | None = None):
        """The model's interval calibration (``calibrate``) if it was made for ``mode``, else None."""
        doc = self.meta.get("calibration")
        if doc is None:
            return None
        from ..calibration import Calibration
        cal = Calibration.from_dict(doc)
        return cal if mode is None or cal.mode == (mode or self.impute_modes[0]) else None

    def calibrate(self, x, obs_mask=None, *, images: int = 500, draws: int = 5, mode: str | None = None,
                  hide: tuple[float, float] = (0.1, 0.9), seed: int = 0, progress: bool = False):
        """Make ``interval(level)`` of later imputations honest: hide part of the observed pixels of
        ``images`` of these (training) images, impute them with ``draws`` draws and keep the split-
        conformal quantiles of the normalised errors (ldmiss/calibration.py). Saved with the model."""
        self._check_fitted()
        from ..calibration import calibrate
        return calibrate(self, x, obs_mask, images=images, draws=draws, mode=mode, hide=hide, seed=seed,
                         progress=progress)

    def reconstruct(self, x, obs_mask=None) -> np.ndarray:
        """decode(encode(x̃, m)) in [0, 1] for methods with an autoencoder (no pixel restored)."""
        self._check_fitted()
        if not self.autoencoder:
            raise Unsupported(f"method {self.name!r} has no autoencoder to reconstruct with")
        xt, m = self._prepare(x, obs_mask, image_shape=self.image_shape)
        with torch.no_grad():
            return self._reconstruct(xt, m).clamp(0, 1).cpu().numpy()

    def decoder_floor(self, x, obs_mask, steps: int | None = None) -> np.ndarray:
        """The lowest error this method's decoder allows on the pixels ``obs_mask`` marks missing:
        complete images ``x`` in, those pixels filled by the decoder's best fit *to their true values*
        (an oracle: a bound on any imputation that decodes a latent), observed pixels as given.
        ``steps``: the latent search's Adam steps (default 100)."""
        from .vae_ops import FLOOR_STEPS
        self._check_fitted()
        if not self.autoencoder:
            raise Unsupported(f"method {self.name!r} has no autoencoder, so no decoder floor")
        xt, m = self._prepare(x, np.ones_like(np.asarray(obs_mask)), image_shape=self.image_shape)
        m = torch.as_tensor(np.asarray(obs_mask), dtype=xt.dtype).expand_as(xt)
        filled = self._decoder_floor(xt, m, FLOOR_STEPS if steps is None else steps).clamp(0, 1).cpu()
        return (m * xt + (1 - m) * filled).numpy()

    # ---- artifacts (methods/artifact.py) ----
    def save(self, directory: str | Path, weights_from: str | Path | None = None) -> Path:
        """Write ``config.json`` + ``weights.safetensors`` into ``directory`` (files replaced atomically);
        ``weights_from``: a saved directory with these very weights, linked instead of rewritten."""
        self._check_fitted()
        return artifact.save_artifact(self, directory, weights_from)

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "Method":
        method = artifact.load_method(directory, device=device)
        if cls is not Method and not isinstance(method, cls):
            raise artifact.ArtifactError(f"{directory} holds a {method.name!r} model, not {cls.name!r}")
        return method
