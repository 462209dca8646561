"""Experiment presets: TOML data files → :class:`ExperimentConfig` (no code branches per preset)."""
from __future__ import annotations

import copy
import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..config import ConfigError, constrain, deep_update, from_dict, parse_set, rename_keys  # noqa: F401 (parse_set: its old home)
from ..errors import UsageError
from ..methods import REGISTRY
from ..missing import MECHANISMS, check_mechanism, make_mask

PRESET_DIR = Path(__file__).with_name("presets")


def _rates(lo_open: bool):
    def check(values) -> str | None:
        values = values if isinstance(values, (list, tuple)) else [values]
        if not values:
            return "at least one rate is needed"
        for r in values:
            if lo_open and not 0.0 < r < 1.0:
                return f"{r!r} is outside (0, 1)"
            if not lo_open and not 0.0 <= r < 1.0:
                return f"{r!r} is outside [0, 1) (a rate of 1 leaves nothing to learn from)"
        return None
    return check


def _nonempty(what: str):
    return lambda values: None if len(values) > 0 else f"at least one {what} is needed"


@dataclass
class ExperimentConfig:
    name: str
    description: str = ""
    dataset: str = "mnist"  # a registry name (data/datasets.py) or a folder of images / an .npz file
    dataset_options: dict = field(default_factory=dict)  # user data only: size = [H, W], aspect, alpha, test_fraction, split_seed
    methods: list[str] = field(default_factory=lambda: ["ldmiss", "ddpm", "diffputer", "mean", "vae"])
    train_rates: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.3, 0.5, 0.6, 0.8])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    mechanism: str = "mcar"  # training masks (ldmiss/missing.py: mcar, block, half, mar, mnar)
    mechanism_params: dict = field(default_factory=dict)  # e.g. {size = 7} for block
    test_mechanism: str = ""  # test masks; "" = the training mechanism and its parameters
    test_mechanism_params: dict = field(default_factory=dict)
    train_size: int = 60000  # random training subset (fixed per seed); ≥ dataset size = all
    test_rate: float = 0.5
    n_eval: int = 1000  # N of unconditional samples and of imputed test images
    n_ref: int = 10000  # reference images (MNIST test) for FID statistics
    draws: int = 1  # imputation draws per test image (their mean is scored)
    # > 0 (with draws ≥ 2): each run calibrates its intervals on this many training images (hiding part
    # of their observed pixels, ldmiss/calibration.py) and scores the calibrated 50% and 90% intervals
    calibration_images: int = 0
    grid: int = 16  # examples kept for the figures
    overrides: dict = field(default_factory=dict)  # per method, overrides of its config ([overrides.<method>])
    # The β-VAE settings of every method that trains one (ldmiss, vae): one table, so the two train
    # the same β-VAE (and the sweep's fit cache trains it once) unless a method's own ``vae`` table
    # overrides a key; e.g. ``--set autoencoder.encoder_drop=0.25`` changes both.
    autoencoder: dict = field(default_factory=dict)
    impute_modes: dict = field(default_factory=dict)  # per method, the imputation modes evaluated; default: its own
    # Sweep axes beyond rate and seed: each condition overrides some of CONDITION_FIELDS (e.g. another
    # dataset, or training and test mechanisms); [] = the one condition the fields above describe.
    conditions: list[dict] = field(default_factory=list)

    def groups(self) -> list["ExperimentConfig"]:
        """One config per condition (each with ``conditions`` empty): what a sweep runs its grid under."""
        if not self.conditions:
            return [self]
        return [dataclasses.replace(self, conditions=[], **{k: (dict(v) if isinstance(v, dict) else v)
                                                            for k, v in c.items()}) for c in self.conditions]

    def tagged_groups(self) -> list[tuple[str, "ExperimentConfig"]]:
        """(folder tag, config) per condition: its dataset and masks (store.condition_tag; "" for
        MNIST under MCAR), plus ``testrate<r>`` where a condition sets its own test missing rate."""
        from .store import condition_tag
        out = []
        for g in self.groups():
            parts = [condition_tag(g.to_dict())] + ([f"testrate{g.test_rate:.2f}"] if g.test_rate != self.test_rate
                                                    else [])
            out.append(("_".join(p for p in parts if p), g))
        return out

    def modes_for(self, method) -> tuple[str, ...]:
        """The imputation modes the sweep evaluates for ``method`` (a Method or its class)."""
        return tuple(self.impute_modes.get(method.name, method.impute_modes))

    def test_masking(self) -> tuple[str, dict]:
        """(mechanism, parameters) of the test masks."""
        if self.test_mechanism:
            return self.test_mechanism, dict(self.test_mechanism_params)
        return self.mechanism, dict(self.mechanism_params)

    def overrides_for(self, name: str, dataset_likelihood: bool = True) -> dict:
        """Method ``name``'s overrides as it receives them: its ``overrides`` table over the shared
        ``autoencoder`` one, and the decoder likelihood that suits the dataset (data/datasets.py: a
        named dataset's registered one, what a folder's images suggest) unless the table sets one —
        or, with ``dataset_likelihood`` false (images that are not the dataset's, e.g. ``train
        --input``), left to the fit's ``"auto"``, which applies the same rule to the images given."""
        parent = getattr(REGISTRY.get(name), "inherits_overrides", None)  # e.g. ldmiss-em: ldmiss's table first
        table = copy.deepcopy(self.overrides.get(parent, {})) if parent else {}
        deep_update(table, copy.deepcopy(self.overrides.get(name, {})))
        if self.autoencoder and trains_vae(name) and getattr(REGISTRY[name], "shares_autoencoder", True):
            shared = copy.deepcopy(self.autoencoder)
            deep_update(shared, table.get("vae", {}))
            table["vae"] = shared
        if table.get("vae", {}).get("likelihood") == "auto":  # a sweep carries the choice, never "auto"
            del table["vae"]["likelihood"]
        if dataset_likelihood and trains_vae(name) and "likelihood" not in table.get("vae", {}):  # the dataset's
            from ..data import dataset_info
            table.setdefault("vae", {})["likelihood"] = dataset_info(self.dataset, self.dataset_options).likelihood
        return table

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> "ExperimentConfig":
        """Check everything a sweep will need before any work (ConfigError naming the key): each
        field against its constraint, then what spans fields, each part by the module that owns its
        vocabulary (datasets by data/, masks by missing.py, method tables by their classes). A config
        that has passed is not checked again until it changes, so a sweep checks it once."""
        key = json.dumps(self.to_dict(), sort_keys=True, default=str)
        if getattr(self, "_checked", None) != key:
            _check_experiment(self)
            object.__setattr__(self, "_checked", key)
        return self


constrain("ExperimentConfig", methods=("check", lambda names: _nonempty("method")(names) or next(
              (f"unknown method {n!r}; choose from {sorted(REGISTRY)}" for n in names if n not in REGISTRY), None)),
          train_rates=("check", _rates(lo_open=False)), test_rate=("check", _rates(lo_open=True)),
          seeds=("check", _nonempty("seed")), n_eval=("range", 2, None), n_ref=("range", 2, None),
          train_size=("range", 1, None), draws=("range", 1, None), grid=("range", 1, None),
          calibration_images=("range", 0, None),
          mechanism=("choices", MECHANISMS),
          test_mechanism=("check", lambda name: None if name in ("", *MECHANISMS) else
                          f"{name!r} is not one of {sorted(MECHANISMS)} (or \"\" = the training one)"))


def trains_vae(method_name: str) -> bool:
    """Whether the method's config holds a β-VAE (a ``vae`` field): those the shared ``autoencoder``
    table applies to (today ldmiss and vae)."""
    cls = REGISTRY.get(method_name)
    return cls is not None and any(f.name == "vae" for f in dataclasses.fields(cls.config_cls))


CONDITION_FIELDS = ("dataset", "dataset_options", "mechanism", "mechanism_params", "test_mechanism",
                    "test_mechanism_params", "test_rate")
LEGACY_FIELDS = {"method": "overrides"}  # 0.1.0's spelling of a preset's per-method tables


def experiment_from_dict(data: dict, where: str = "") -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a dict, checked key by key, type by type and method table by
    method table (raises ConfigError naming the key), so nothing fails after runs have started."""
    data, found = rename_keys(data, LEGACY_FIELDS)
    for old in found:
        warnings.warn(f"the experiment table {old!r} is now {LEGACY_FIELDS[old]!r} ([{LEGACY_FIELDS[old]}.<method>], "
                      f"--set {LEGACY_FIELDS[old]}.<method>.…); the old spelling will be removed in a later version",
                      DeprecationWarning, stacklevel=2)
    return from_dict(ExperimentConfig, data, where).check()


def _check_experiment(cfg: ExperimentConfig) -> None:
    from_dict(ExperimentConfig, cfg.to_dict())  # every field against its type and constraint
    for i, c in enumerate(cfg.conditions):
        bad = sorted(set(c) - set(CONDITION_FIELDS))
        if bad:
            raise ConfigError(f"conditions[{i}]: {bad} cannot vary between conditions (valid: {list(CONDITION_FIELDS)})")
    if cfg.conditions:
        tags = [tag for tag, _ in cfg.tagged_groups()]
        if len(set(tags)) != len(tags):
            raise ConfigError(f"conditions: two conditions are the same ({tags})")
    for name in cfg.overrides:
        if name not in REGISTRY:
            raise ConfigError(f"overrides.{name}: unknown method; choose from {sorted(REGISTRY)}")
    if cfg.autoencoder:
        from ..methods.vae_ops import VAEConfig
        from_dict(VAEConfig, cfg.autoencoder, "autoencoder")  # its own keys and types, named as written
    for name, modes in cfg.impute_modes.items():
        if name not in REGISTRY:
            raise ConfigError(f"impute_modes.{name}: unknown method; choose from {sorted(REGISTRY)}")
        supported = REGISTRY[name].supported_modes()
        if not (isinstance(modes, list) and len(modes) > 0 and all(m in supported for m in modes)):
            raise ConfigError(f"impute_modes.{name}: {modes!r} must be a non-empty list of {list(supported)}")
    for i, g in enumerate(cfg.groups()):
        where = f"conditions[{i}]: " if cfg.conditions else ""
        try:
            if cfg.conditions:
                from_dict(ExperimentConfig, g.to_dict())  # a condition's own values: types and constraints
            _check_condition(g)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None


def _check_condition(cfg: ExperimentConfig) -> None:
    """What one condition needs: its dataset, its masks' parameters, each method's overrides as it
    will receive them (its table over the shared autoencoder one), and a drawn mask at every rate."""
    from ..data import DatasetError, dataset_info
    try:
        dataset_info(cfg.dataset, cfg.dataset_options)
    except (DatasetError, ValueError) as exc:
        raise ConfigError(f"dataset: {exc}") from None
    for key, (name, params) in {"mechanism_params": (cfg.mechanism, cfg.mechanism_params),
                                "test_mechanism_params": cfg.test_masking()}.items():
        try:
            check_mechanism(name, params)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    for name in REGISTRY:
        if name in cfg.overrides or (cfg.autoencoder and trains_vae(name)) or name in cfg.methods:
            REGISTRY[name].validate_overrides(cfg.overrides_for(name))
    _probe_masks(cfg)  # last: it assumes the rates and mechanism names are valid


def _probe_masks(cfg: ExperimentConfig) -> None:
    """Draw each mask the sweep will need on a small random batch of the dataset's image size, so
    a parameter value no mask can meet (a block larger than the image, a MAR rate above the
    pixels that may go missing) is a ConfigError before any run rather than a failure in each."""
    from .. import rng
    from ..data import dataset_info
    shape = dataset_info(cfg.dataset, cfg.dataset_options).shape
    probe = rng.rand((64, *shape), rng.generator(0))
    name, params = cfg.test_masking()
    for key, mech, mparams, rates in (("mechanism", cfg.mechanism, cfg.mechanism_params, cfg.train_rates),
                                      ("test_mechanism", name, params, [cfg.test_rate])):
        for r in rates:
            try:
                make_mask(mech, probe, r, 0, **mparams)
            except ValueError as exc:
                raise ConfigError(f"{key}: {mech} {mparams or ''} at rate {r}: {exc}") from None


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _preset_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise UsageError(f"unknown preset {name_or_path!r}; choose from {list_presets()} or give a .toml path")
    return path


def _preset_data(path: Path, seen: tuple = ()) -> dict:
    """A preset's TOML as a dict; ``extends = "other"`` starts from that preset's (recursively) and
    applies this file's keys on top (tables merge key by key), so a variant states only what differs."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    base = data.pop("extends", None)
    if base is None:
        return data
    base_path = _preset_path(base) if not Path(base).suffix else (path.parent / base)
    if base_path.resolve() in seen:
        raise ConfigError(f"{path}: extends {base!r}, which extends it back")
    merged = _preset_data(base_path, seen + (path.resolve(),))
    merged.pop("description", None)  # a description is the preset's own
    deep_update(merged, data)
    return merged


def preset_data(name_or_path: str) -> dict:
    """A preset's table as written (``extends`` resolved), before any check."""
    return _preset_data(_preset_path(name_or_path))


def load_preset(name_or_path: str, changes: dict | None = None) -> ExperimentConfig:
    """A preset by name (``smoke``, ``quick``, ``cpu``, ``paper``, …) or a path to a TOML file, with
    ``changes`` (nested, e.g. from ``--set``) applied on top; checked once, as a whole."""
    path = _preset_path(name_or_path)
    data = _preset_data(path)
    deep_update(data, changes or {})
    try:
        return experiment_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if not changes else str(exc)) from exc
