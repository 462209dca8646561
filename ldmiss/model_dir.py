"""A model directory's description, ``config.json``, read and checked without torch: so that the
command line can refuse a wrong model path at once, before the weights (and torch) are loaded.
:mod:`ldmiss.methods.artifact` writes the directory and loads its weights."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError

CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.safetensors"
ARTIFACT_FORMAT = "ldmiss-artifact-v2"
READABLE_FORMATS = ("ldmiss-artifact-v1", ARTIFACT_FORMAT)  # v1: 0.1.0, configs upgraded on load
LEGACY_META = ("impute_cost",)  # 0.1.0 kept the last imputation's cost here; it is Imputation.cost now


class ArtifactError(UserError, RuntimeError):
    """A model directory that is missing, incomplete or corrupted."""


def read_artifact_config(directory: str | Path) -> dict:
    """``config.json`` of a model directory, checked for its format and fields (ArtifactError)."""
    directory = Path(directory)
    if directory.is_file():
        raise ArtifactError(f"{directory} is a file; a model is the directory `ldmiss train --out` wrote "
                            f"(it holds {CONFIG_FILE} and {WEIGHTS_FILE})")
    if not directory.is_dir():
        raise ArtifactError(f"model directory {directory} does not exist")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory} is not an ldmiss model directory: {CONFIG_FILE} is missing")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is corrupted (not valid JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        raise ArtifactError(f"{path} is not an {ARTIFACT_FORMAT} config")
    for key in ("method", "image_shape", "config", "weights_sha256"):
        if key not in doc:
            raise ArtifactError(f"{path} lacks the field {key!r}")
    shape = doc["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise ArtifactError(f"{path}: image_shape must be three positive integers [C, H, W], got {shape!r}")
    return doc
