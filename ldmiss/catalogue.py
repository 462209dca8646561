"""The names the command line's parser shows and checks — methods and their imputation modes,
conditioners, samplers, presets — without importing torch.

Why: ``ldmiss train --help`` or a mistyped option should answer at once, but the registries that
hold these names live in modules that import torch and the metrics (≈ 3 s before anything is
printed). The registries stay the one place a name is declared; this module reads them once, in a
full import, and keeps what the parser needs in a small JSON file under the user's cache, keyed
by the size and modification time of every source file of the package, so any edit (a new method
file, a new registry line, a new preset) makes a fresh read. Where the cache cannot be written the
registries are simply read every time.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
FORMAT = 1  # bump when the catalogue's fields change


def cache_dir() -> Path:
    """``$LDMISS_CACHE`` if set, else ``$XDG_CACHE_HOME/ldmiss`` (``~/.cache/ldmiss``), then ``cli/``."""
    if os.environ.get("LDMISS_CACHE"):
        return Path(os.environ["LDMISS_CACHE"]).expanduser() / "cli"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ldmiss" / "cli"


def source_key() -> str:
    """A digest of every .py and .toml file of the package (path, size, mtime): ≈ 1 ms of stat calls."""
    digest = hashlib.sha256(f"{FORMAT}".encode())
    for path in sorted(p for pattern in ("*.py", "*.toml") for p in PACKAGE_DIR.rglob(pattern)):
        st = path.stat()
        digest.update(f"{path.relative_to(PACKAGE_DIR)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def read_registries() -> dict:
    """The live registries (imports torch): what :func:`catalogue` caches."""
    from .data import REGISTRY as DATASETS
    from .diffusion import CONDITIONERS, STEPPERS
    from .experiments.config import list_presets
    from .methods import REGISTRY as METHODS
    return {
        "methods": sorted(METHODS),
        "conditionable": [n for n, c in METHODS.items() if c.conditionable],
        "modes": {n: list(c.supported_modes()) for n, c in METHODS.items() if not c.conditionable},
        "conditioners": {n: bool(c.supports(False)) for n, c in CONDITIONERS.items()},  # True: latent models too
        "samplers": list(STEPPERS),
        "presets": list_presets(),
        "datasets": sorted(DATASETS),
        "fetchable": sorted(k for k, v in DATASETS.items() if v.fetchable),
    }


def catalogue() -> dict:
    """The registries' names, from the cache when the sources are unchanged, else read and cached."""
    install = hashlib.sha256(str(PACKAGE_DIR).encode()).hexdigest()[:12]  # several checkouts share one cache
    path = cache_dir() / f"catalogue-{install}-{source_key()}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    data = read_registries()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f"catalogue-{install}-*.json"):
            stale.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:  # a read-only home: read the registries each time
        pass
    return data
