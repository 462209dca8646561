"""Results store: one directory per run, published atomically.

A run is built in ``<name>.tmp-<host>-<pid>-<token>`` and renamed to ``<name>`` only when
``metrics.json`` is written, so a killed sweep loses only the run in flight and a rerun skips every
finished run. Before a run starts its sweeper takes ``<name>.claim`` by exclusive create, so two
sweepers on one (shared) root never run the same run; a claim or staging directory is removed
only when it is provably stale: its process is gone on this host, or (another host's) it is older
than ``STALE_AFTER`` seconds.
A finished run keeps the settings that determined it (``settings`` and its hash in
``metrics.json``), so a rerun with other settings is told which fields differ instead of silently
mixing two configurations in one results folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..cache import HOST, staging  # noqa: F401  (staging: the run folders' atomic writes)

METRICS_FILE = "metrics.json"
SWEEP_FILE = "sweep.json"


def cache_dir(root: Path) -> Path:
    """Components shared between runs (the β-VAE of ``ldmiss`` and ``vae`` for a rate and seed);
    not results: safe to delete, never committed."""
    return Path(root) / "_cache"


def checkpoint_dir(root: Path, method: str, rate: float, seed: int, settings_key: str, group: str = "") -> Path:
    """Training checkpoints of one run in flight, keyed by its settings (so a run forced with new
    settings never resumes from old ones); removed when the run is published. Not results."""
    return Path(root) / "_checkpoints" / (group or ".") / method / f"rate{rate:.2f}_seed{seed}-{settings_key}"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in str(text)).strip("-")


def _mechanism_slug(name: str, params: dict | None) -> str:
    return "-".join([name, *(f"{k}{_slug(v)}" for k, v in sorted((params or {}).items()))])


def condition_tag(fields: dict) -> str:
    """Folder of a condition (dataset and masks) inside a results root: "" for MNIST under MCAR
    (so folders made before conditions existed keep their layout), else the parts that differ:
    the dataset (a path as ``user-<name>-<hash>``), then the masks — one name when training and test
    share them (``block-size14``), ``train-<a>_test-<b>`` when not."""
    parts = []
    dataset, options = fields.get("dataset", "mnist"), fields.get("dataset_options") or {}
    from ..data.datasets import is_path
    if is_path(dataset):
        digest = hashlib.sha256(json.dumps([str(Path(dataset).expanduser().resolve()), options], sort_keys=True,
                                           default=str).encode()).hexdigest()[:8]
        parts.append(f"user-{_slug(Path(dataset).stem or 'data')}-{digest}")
    elif dataset != "mnist":
        parts.append(_slug(dataset))
    train = _mechanism_slug(fields.get("mechanism", "mcar"), fields.get("mechanism_params"))
    test = (_mechanism_slug(fields["test_mechanism"], fields.get("test_mechanism_params"))
            if fields.get("test_mechanism") else train)
    if (train, test) != ("mcar", "mcar"):
        parts.append(train if train == test else f"train-{train}_test-{test}")
    return "_".join(parts)


def run_name(method: str, rate: float, seed: int, group: str = "") -> str:
    return f"{group + '/' if group else ''}{method}/rate{rate:.2f}_seed{seed}"


def run_dir(root: Path, method: str, rate: float, seed: int, group: str = "") -> Path:
    return Path(root) / run_name(method, rate, seed, group)


def is_done(path: Path) -> bool:
    return (Path(path) / METRICS_FILE).is_file()


# What determines a run's result besides its method, rate and seed: the protocol fields of the
# experiment, the method's full config and the package version (the names as stored in ``settings``).
PROTOCOL_FIELDS = ("dataset", "dataset_options", "mechanism", "mechanism_params", "test_mechanism", "test_mechanism_params",
                   "train_size", "test_rate", "n_eval", "n_ref", "draws", "impute_modes")


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=float).encode()).hexdigest()[:16]


def stored_settings(doc: dict) -> dict:
    """The settings a stored run was made with; runs written before ``settings`` existed are read
    from the fields they always stored (their dataset and mechanism were then always MNIST, MCAR)."""
    if "settings" in doc:
        settings = dict(doc["settings"])
    else:
        settings = {"dataset": "mnist", "mechanism": "mcar", "train_size": doc["train_size"], "test_rate": doc["test_rate"],
                    "n_eval": doc["metrics"]["n_eval"], "n_ref": doc["metrics"]["n_ref"], "draws": doc["draws"],
                    "config": doc["config"], "ldmiss_version": doc["ldmiss_version"]}
    from ..methods import REGISTRY  # the method's old key spellings (0.1.0) read as today's
    if doc.get("method") in REGISTRY:
        settings["config"] = REGISTRY[doc["method"]].upgrade_config(settings["config"])
    return settings


_ABSENT = "<absent>"


def settings_diff(old: dict, new: dict, defaults: dict | None = None, prefix: str = "") -> list[str]:
    """``key: old → new`` for every (dotted) field where two settings differ. A field the old run
    did not have (added to the package since) counts as equal when the new value is that field's
    default in ``defaults`` — new options default to the behaviour that came before them."""
    out, defaults = [], defaults or {}
    for key in sorted(set(old) | set(new), key=str):
        a, b, d = old.get(key, _ABSENT), new.get(key, _ABSENT), defaults.get(key, _ABSENT)
        if isinstance(a, dict) and isinstance(b, dict):
            out += settings_diff(a, b, d if isinstance(d, dict) else {}, f"{prefix}{key}.")
        elif a != b and not (a == _ABSENT and b == d):
            out.append(f"{prefix}{key}: {a!r} → {b!r}")
    return out


def read_run(path: Path) -> dict:
    return json.loads((Path(path) / METRICS_FILE).read_text())


def write_json(path: Path, doc) -> None:
    """Atomic JSON write (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2, default=float)
    os.replace(tmp, path)


STALE_AFTER = 48 * 3600.0  # a claim or staging area of another host counts as abandoned after this long
_HOST = HOST


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks since boot, /proc/<pid>/stat field 22), or
    None where that cannot be read. With the pid it names one process for good: a pid is reused,
    a (pid, start) pair is not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_gone(host: str, pid: int, started: float, proc_start: str | None = None) -> bool:
    """Whether a claim's owner is gone: on this host, its process has ended — or its pid now names
    another process (the start time differs: the pid was reused, and a live stranger must not hold
    a run forever); on another host, the claim is older than ``STALE_AFTER``."""
    if host == _HOST:
        if not _alive(pid):
            return True
        return proc_start is not None and process_start(pid) not in (None, proc_start)
    return time.time() - started > STALE_AFTER


def claim(final: Path) -> bool:
    """Take the run at ``final`` for this process (exclusive create of ``<name>.claim``). False
    when another live sweeper holds it; a stale claim (owner gone) is taken over."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    path = final.parent / f"{final.name}.claim"
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text())
                gone = _owner_gone(owner["host"], int(owner["pid"]), float(owner["started"]), owner.get("proc_start"))
            except (OSError, ValueError, KeyError):  # being written this instant, or vanished: look again
                time.sleep(0.05)
                continue
            if not gone:
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump({"host": _HOST, "pid": os.getpid(), "started": time.time(),
                       "proc_start": process_start(os.getpid())}, fh)
        return True
    return False


def release(final: Path) -> None:
    """Give up this process's claim on ``final`` (after publishing it, or on failure)."""
    path = Path(final).parent / f"{Path(final).name}.claim"
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if owner.get("host") == _HOST and owner.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _staging_owner_gone(path: Path) -> bool:
    tail = path.name.rsplit(".tmp-", 1)[1]
    parts = tail.split("-")
    try:
        if len(parts) == 1:  # ``.tmp-<pid>`` of older versions: always made on this host
            return not _alive(int(parts[0]))
        return _owner_gone(parts[0], int(parts[1]), path.stat().st_mtime)
    except (ValueError, OSError):
        return False


def clean_stale(root: Path) -> list[Path]:
    """Remove staging directories left by killed runs — only those whose owner is provably gone
    (another sweeper's run in flight on the same root is left alone)."""
    candidates = [*Path(root).glob("*/*.tmp-*"), *Path(root).glob("*/*/*.tmp-*")]  # ungrouped and grouped runs
    stale = [p for p in candidates if p.is_dir() and _staging_owner_gone(p)]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def load_runs(root: Path) -> list[dict]:
    runs = []
    paths = [*Path(root).glob(f"*/*/{METRICS_FILE}"), *Path(root).glob(f"*/*/*/{METRICS_FILE}")]
    for path in sorted(paths):
        if ".tmp-" in path.parent.name or path.parts[len(Path(root).parts)].startswith("_"):
            continue  # a run in flight, or a component cache / comparison point under _cache, compare
        doc = json.loads(path.read_text())
        doc["_dir"] = str(path.parent)
        runs.append(doc)
    return runs
