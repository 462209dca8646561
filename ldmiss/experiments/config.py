"""Experiment presets: TOML data files → :class:`ExperimentConfig` (no code branches per preset)."""
from __future__ import annotations

import copy
import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..config import ConfigError, deep_update, from_dict

PRESET_DIR = Path(__file__).with_name("presets")


@dataclass
class ExperimentConfig:
    name: str
    description: str = ""
    dataset: str = "mnist"  # a registry name (data/datasets.py) or a folder of images / an .npz file
    dataset_options: dict = field(default_factory=dict)  # user data only: size = [H, W], test_fraction, split_seed
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
    grid: int = 16  # examples kept for the figures
    method: dict = field(default_factory=dict)  # per-method config overrides
    # The β-VAE settings of every method that trains one (ldmiss, vae): one table, so the two train
    # the same β-VAE (and the sweep's fit cache trains it once) unless a method's own ``vae`` table
    # overrides a key; e.g. ``--set autoencoder.encoder_drop=0.25`` changes both.
    autoencoder: dict = field(default_factory=dict)
    impute_modes: dict = field(default_factory=dict)  # per method, the imputation modes evaluated; default: its own
    # Sweep axes beyond rate and seed: each condition overrides some of CONDITION_FIELDS (e.g. another
    # dataset, or training and test mechanisms); [] = the one condition the fields above describe.
    conditions: list = field(default_factory=list)

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

    def method_overrides(self, name: str) -> dict:
        """The preset's table for ``name``; for the user's own data, the decoder likelihood that suits
        it (data/datasets.py) unless the table sets one (named datasets use the config's default)."""
        table = copy.deepcopy(self.method.get(name, {}))
        if self.autoencoder and trains_vae(name):
            shared = copy.deepcopy(self.autoencoder)
            deep_update(shared, table.get("vae", {}))
            table["vae"] = shared
        from ..data.datasets import is_path
        if is_path(self.dataset) and trains_vae(name) and "likelihood" not in table.get("vae", {}):
            from ..data import dataset_info
            table.setdefault("vae", {})["likelihood"] = dataset_info(self.dataset, self.dataset_options).likelihood
        return table

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def trains_vae(method_name: str) -> bool:
    """Whether the method's config holds a β-VAE (a ``vae`` field): those the shared ``autoencoder``
    table applies to (today ldmiss and vae)."""
    from ..methods import REGISTRY
    cls = REGISTRY.get(method_name)
    return cls is not None and any(f.name == "vae" for f in dataclasses.fields(cls.config_cls))


CONDITION_FIELDS = ("dataset", "dataset_options", "mechanism", "mechanism_params", "test_mechanism",
                    "test_mechanism_params", "test_rate")


def experiment_from_dict(data: dict, where: str = "") -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a dict, checked key by key, type by type and method table by
    method table (raises ConfigError naming the key), so nothing fails after runs have started."""
    cfg = from_dict(ExperimentConfig, data, where)
    validate_experiment(cfg)
    return cfg


def validate_experiment(cfg: ExperimentConfig) -> None:
    from ..methods import REGISTRY
    from ..missing import MECHANISMS

    def need(ok: bool, msg: str):
        if not ok:
            raise ConfigError(msg)

    need(isinstance(cfg.conditions, list) and all(isinstance(c, dict) for c in cfg.conditions),
         "conditions: expected a list of tables")
    for i, c in enumerate(cfg.conditions):
        bad = sorted(set(c) - set(CONDITION_FIELDS))
        need(not bad, f"conditions[{i}]: {bad} cannot vary between conditions (valid: {list(CONDITION_FIELDS)})")
    if cfg.conditions:
        tags = [tag for tag, _ in cfg.tagged_groups()]
        need(len(set(tags)) == len(tags), f"conditions: two conditions are the same ({tags})")
        for i, g in enumerate(cfg.groups()):
            try:
                validate_experiment(from_dict(ExperimentConfig, g.to_dict()))  # types too
            except ConfigError as exc:
                raise ConfigError(f"conditions[{i}]: {exc}") from None
        return
    from ..data import DatasetError, dataset_info
    try:
        dataset_info(cfg.dataset, cfg.dataset_options)
    except (DatasetError, ValueError) as exc:
        raise ConfigError(f"dataset: {exc}") from None
    need(cfg.mechanism in MECHANISMS, f"mechanism: {cfg.mechanism!r} is not one of {sorted(MECHANISMS)}")
    need(cfg.test_mechanism in ("", *MECHANISMS),
         f"test_mechanism: {cfg.test_mechanism!r} is not one of {sorted(MECHANISMS)} (or \"\" = the training one)")
    for key, (name, params) in {"mechanism_params": (cfg.mechanism, cfg.mechanism_params),
                                "test_mechanism_params": cfg.test_masking()}.items():
        allowed = [p for p in inspect.signature(MECHANISMS[name]).parameters if p not in ("x", "rate", "generator")]
        unknown = sorted(set(params) - set(allowed))
        need(not unknown, f"{key}: {unknown} are not parameters of {name!r} (valid: {allowed})")
    need(len(cfg.methods) > 0, "methods: at least one method is needed")
    for name in cfg.methods:
        need(name in REGISTRY, f"methods: unknown method {name!r}; choose from {sorted(REGISTRY)}")
    need(len(cfg.train_rates) > 0, "train_rates: at least one rate is needed")
    for r in cfg.train_rates:
        need(0.0 <= r < 1.0, f"train_rates: {r!r} is outside [0, 1) (a rate of 1 leaves nothing to learn from)")
    need(0.0 < cfg.test_rate < 1.0, f"test_rate: {cfg.test_rate!r} is outside (0, 1)")
    need(len(cfg.seeds) > 0, "seeds: at least one seed is needed")
    for key in ("n_eval", "n_ref"):
        need(getattr(cfg, key) >= 2, f"{key}: {getattr(cfg, key)!r} must be ≥ 2 (FID needs two images)")
    for key in ("train_size", "draws", "grid"):
        need(getattr(cfg, key) >= 1, f"{key}: {getattr(cfg, key)!r} must be ≥ 1")
    if cfg.autoencoder:
        from ..methods.vae_ops import VAEConfig
        from_dict(VAEConfig, cfg.autoencoder, "autoencoder")  # its own keys and types, named as written
    for name in cfg.method:
        need(name in REGISTRY, f"method.{name}: unknown method; choose from {sorted(REGISTRY)}")
    # each method's overrides as it will receive them: its own table over the shared autoencoder one
    for name in REGISTRY:
        if name in cfg.method or (cfg.autoencoder and trains_vae(name)):
            REGISTRY[name].validate_overrides(cfg.method_overrides(name))
    for name, modes in cfg.impute_modes.items():
        need(name in REGISTRY, f"impute_modes.{name}: unknown method; choose from {sorted(REGISTRY)}")
        supported = REGISTRY[name].supported_modes()
        need(isinstance(modes, list) and len(modes) > 0 and all(m in supported for m in modes),
             f"impute_modes.{name}: {modes!r} must be a non-empty list of {list(supported)}")
    _probe_masks(cfg)  # last: it assumes the rates and mechanism names are valid


def _probe_masks(cfg: ExperimentConfig) -> None:
    """Draw each mask the sweep will need on a small random batch of the dataset's image size, so
    a parameter value no mask can meet (a block larger than the image, a MAR rate above the
    pixels that may go missing) is a ConfigError before any run rather than a failure in each."""
    from .. import rng
    from ..data import dataset_info
    from ..missing import make_mask
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
        raise ValueError(f"unknown preset {name_or_path!r}; choose from {list_presets()} or give a .toml path")
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


def load_preset(name_or_path: str) -> ExperimentConfig:
    """A preset by name (``smoke``, ``quick``, ``cpu``, ``paper``, …) or a path to a TOML file."""
    path = _preset_path(name_or_path)
    data = _preset_data(path)
    try:
        return experiment_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def parse_set(assignments: list[str] | None) -> dict:
    """``["method.ldmiss.prior.train.steps=100", ...]`` → nested dict (values parsed as TOML literals)."""
    out: dict = {}
    for item in assignments or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out
