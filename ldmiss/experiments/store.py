"""Results store: one directory per run, published atomically.

A run is built in ``<name>.tmp-<pid>`` and renamed to ``<name>`` only when ``metrics.json`` is
written, so a killed sweep loses only the run in flight and a rerun skips every finished run.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

METRICS_FILE = "metrics.json"
SWEEP_FILE = "sweep.json"


def cache_dir(root: Path) -> Path:
    """Components shared between runs (the β-VAE of ``ldmiss`` and ``vae`` for a rate and seed);
    not results: safe to delete, never committed."""
    return Path(root) / "_cache"


def run_name(method: str, rate: float, seed: int) -> str:
    return f"{method}/rate{rate:.2f}_seed{seed}"


def run_dir(root: Path, method: str, rate: float, seed: int) -> Path:
    return Path(root) / run_name(method, rate, seed)


def is_done(path: Path) -> bool:
    return (Path(path) / METRICS_FILE).is_file()


def write_json(path: Path, doc) -> None:
    """Atomic JSON write (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2, default=float)
    os.replace(tmp, path)


@contextmanager
def staging(final: Path):
    """Yield a temporary directory that becomes ``final`` when the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def clean_stale(root: Path) -> list[Path]:
    """Remove staging directories left by killed runs."""
    stale = [p for p in Path(root).glob("*/*.tmp-*") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def load_runs(root: Path) -> list[dict]:
    runs = []
    for path in sorted(Path(root).glob(f"*/*/{METRICS_FILE}")):
        if ".tmp-" in path.parent.name:
            continue
        doc = json.loads(path.read_text())
        doc["_dir"] = str(path.parent)
        runs.append(doc)
    return runs
