"""Experiment presets: TOML data files → :class:`ExperimentConfig` (no code branches per preset)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PRESET_DIR = Path(__file__).with_name("presets")


@dataclass
class ExperimentConfig:
    name: str
    description: str = ""
    dataset: str = "mnist"
    methods: list[str] = field(default_factory=lambda: ["ldmiss", "ddpm", "diffputer", "mean", "vae"])
    train_rates: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.3, 0.5, 0.6, 0.8])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    mechanism: str = "mcar"
    train_size: int = 60000  # random training subset (fixed per seed); ≥ dataset size = all
    test_rate: float = 0.5
    n_eval: int = 1000  # N of unconditional samples and of imputed test images
    n_ref: int = 10000  # reference images (MNIST test) for FID statistics
    draws: int = 1  # imputation draws per test image (their mean is scored)
    grid: int = 16  # examples kept for the figures
    method: dict = field(default_factory=dict)  # per-method config overrides

    def method_overrides(self, name: str) -> dict:
        return dict(self.method.get(name, {}))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_path: str) -> ExperimentConfig:
    """A preset by name (``smoke``, ``quick``, ``cpu``, ``paper``) or a path to a TOML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ValueError(f"unknown preset {name_or_path!r}; choose from {list_presets()} or give a .toml path")
    data = tomllib.loads(path.read_text())
    names = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    return ExperimentConfig(**data)


def parse_set(assignments: list[str] | None) -> dict:
    """``["ldmiss.prior_train.steps=100", ...]`` → nested dict (values parsed as TOML literals)."""
    out: dict = {}
    for item in assignments or []:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
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
