"""The on-disk form of a fitted method: a directory with ``config.json`` and ``weights.safetensors``.

``config.json`` holds the format tag, the package version, the method name, the image shape, the
full config, metadata (timings, …) and the weights' SHA-256, so ``load_method(dir)`` rebuilds any
method from the directory alone and refuses a corrupted or mismatched one. Files are replaced
atomically. A directory written by 0.1.0 (format v1, whose configs spelled some keys differently:
``Method.LEGACY_KEYS``) still loads.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .. import __version__
from ..config import from_dict, to_dict
from ..model_dir import (  # noqa: F401
    ARTIFACT_FORMAT,
    CONFIG_FILE,
    LEGACY_META,
    READABLE_FORMATS,
    WEIGHTS_FILE,
    ArtifactError,
    read_artifact_config,
)
from .registry import get_method_class


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(directory: Path, name: str, suffix: str, write) -> Path:
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=suffix)
    os.close(fd)
    write(tmp)
    # mkstemp creates 0600 files, and a writer may replace the file (safetensors does): artifacts are
    # meant to be shared, so the mode is set on what was written
    os.chmod(tmp, 0o644)
    os.replace(tmp, directory / name)
    return directory / name


def link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (no second copy on disk, and it survives ``src`` being
    deleted), or a copy where links are impossible (another file system)."""
    import shutil
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def save_artifact(method, directory: str | Path, weights_from: str | Path | None = None) -> Path:
    """Write ``method`` (fitted) into ``directory``. ``weights_from``: a model directory holding
    these very weights (e.g. the fit cache's), linked instead of written again."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if weights_from is not None:
        link_or_copy(Path(weights_from) / WEIGHTS_FILE, directory / WEIGHTS_FILE)
    else:
        tensors = {k: v.detach().cpu().contiguous() for k, v in method.state_tensors().items()}
        _write_atomic(directory, WEIGHTS_FILE, ".safetensors", lambda tmp: save_file(tensors, tmp))
    doc = {"format": ARTIFACT_FORMAT, "ldmiss_version": __version__, "method": method.name,
           "image_shape": list(method.image_shape), "config": to_dict(method.config), "meta": method.meta,
           "weights_sha256": sha256(directory / WEIGHTS_FILE)}

    def write_json(tmp):
        with open(tmp, "w") as fh:
            json.dump(doc, fh, indent=2, default=float)
    _write_atomic(directory, CONFIG_FILE, ".json", write_json)
    return directory


def load_method(directory: str | Path, device: str = "auto"):
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
    if sha256(weights) != doc["weights_sha256"]:
        raise ArtifactError(f"{weights} is corrupted: its SHA-256 does not match the one in {CONFIG_FILE}")
    try:
        config = from_dict(cls.config_cls, cls.upgrade_config(doc["config"]))
        method = cls(config, device=device)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{directory}: invalid config ({exc})") from exc
    method.image_shape = tuple(doc["image_shape"])
    method._build(method.image_shape)
    try:
        method.load_state_tensors(load_file(str(weights)))
    except Exception as exc:
        raise ArtifactError(f"{weights} could not be loaded into a {doc['method']!r} model: {exc}") from exc
    method.meta = {k: v for k, v in doc.get("meta", {}).items() if k not in LEGACY_META}
    method.meta["fitted"] = True
    return method


def load_state_tensors(method, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` (as :meth:`Method.state_tensors` names them) into ``method``'s parts."""
    expected = set(method.state_tensors())
    optional = set(method.OPTIONAL_PARTS)  # tensors an older artifact may lack: left as built
    if set(tensors) != expected and not (set(tensors) < expected and expected - set(tensors) <= optional):
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ArtifactError(f"weights do not match the config (missing {missing[:5]}, unexpected {extra[:5]})")
    for name, part in method._parts().items():
        if name not in tensors and name in optional:
            continue
        if isinstance(part, torch.Tensor):
            part.copy_(tensors[name])
        else:
            prefix = name + "."
            part.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            part.to(method.device).eval().requires_grad_(False)
