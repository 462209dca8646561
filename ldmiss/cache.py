"""One cache primitive: a keyed directory that is built once, under a lock, and staged atomically.

Used by the β-VAE cache (methods/vae_ops.py: the β-VAE ``ldmiss`` and ``vae`` share) and the
sweep's fit cache (experiments/sweep.py: runs that train the same model). Both need the same four
steps — key → lock → load if present, else build → stage and rename into place — and a second
process asking for the same key waits on the lock for the first one's result instead of repeating
the work. An entry is complete exactly when its directory exists (it appears by one rename).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

HOST = socket.gethostname().replace("-", "_")


@contextlib.contextmanager
def staging(final: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``final`` (replacing it) when the block succeeds;
    it is removed if the block fails. Its name ``<final>.tmp-<host>-<pid>-<token>`` lets a cleaner
    tell an abandoned one from one in use (experiments/store.py, ``clean_stale``)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{final.name}.tmp-{HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Entry:
    """A locked cache entry. ``path``: its directory (``ready`` when it exists). ``scratch``: a
    directory beside it for work in progress that must survive a killed build (checkpoints); it is
    removed when the entry is built."""

    path: Path

    @property
    def ready(self) -> bool:
        return self.path.is_dir()

    @property
    def scratch(self) -> Path:
        return self.path.with_name(self.path.name + ".work")

    @contextlib.contextmanager
    def build(self) -> Iterator[Path]:
        """A temporary directory to write the entry into; renamed to ``path`` when the block ends
        without an error (and removed if it fails)."""
        with staging(self.path) as tmp:
            yield tmp
        shutil.rmtree(self.scratch, ignore_errors=True)


@contextlib.contextmanager
def entry(root: str | Path, key: str) -> Iterator[Entry]:
    """Hold the lock of entry ``key`` under ``root`` for the block (other processes wait)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Entry(root / key)
