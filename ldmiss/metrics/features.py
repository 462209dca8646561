"""The shipped metric networks (penultimate features for FID, logits for IS), one per named dataset.

Each is trained by ``scripts/train_classifier.py --dataset NAME`` (seeded; its test accuracy is in
the table below and in the file's metadata); the weights file travels inside the package and is
verified against its SHA-256 before use, so every number computed with it is computed with the
same network. A dataset without an entry has no FID/IS (the report says so and scores pixels only).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..nets import ImageClassifier

_HERE = Path(__file__).parent


@dataclass(frozen=True)
class MetricNetwork:
    dataset: str
    file: str  # inside ldmiss/metrics/
    sha256: str
    mean: float  # the input standardisation it was trained with
    std: float
    test_accuracy: float  # measured by the training script on the dataset's test split
    channels: int = 1
    classes: int = 10

    @property
    def path(self) -> Path:
        return _HERE / self.file


METRIC_NETWORKS: dict[str, MetricNetwork] = {
    "mnist": MetricNetwork("mnist", "mnist_classifier.safetensors",
                           "183c08dd17f7a57f77c95c725420a6d002af56ace2ef7fcc33fdaf420f35e532",
                           mean=0.1307, std=0.3081, test_accuracy=0.9946),
    # scripts/train_classifier.py --dataset fashion-mnist --epochs 6 (seed 0; 308 s on one CPU thread)
    "fashion-mnist": MetricNetwork("fashion-mnist", "fashion-mnist_classifier.safetensors",
                                   "d3899b4404733e2dbcee8aa9cba69bdd083008941cfd4b8ffbc757ddfb93d708",
                                   mean=0.2860, std=0.3530, test_accuracy=0.9097),
}
# The MNIST network's names as they shipped first.
CLASSIFIER_PATH = METRIC_NETWORKS["mnist"].path
CLASSIFIER_SHA256 = METRIC_NETWORKS["mnist"].sha256


class FeatureError(RuntimeError):
    pass


def metric_network(dataset: str) -> MetricNetwork:
    if dataset not in METRIC_NETWORKS:
        raise FeatureError(f"no metric network for dataset {dataset!r} (only {sorted(METRIC_NETWORKS)}): FID and IS "
                           "are unavailable for it; score imputations by MSE, PSNR and SSIM on missing pixels")
    return METRIC_NETWORKS[dataset]


@lru_cache(maxsize=4)
def load_classifier(dataset: str = "mnist") -> ImageClassifier:
    spec = metric_network(dataset)
    if not spec.path.is_file():
        raise FeatureError(f"{spec.path} is missing; reinstall ldmiss or run "
                           f"scripts/train_classifier.py --dataset {dataset}")
    digest = hashlib.sha256(spec.path.read_bytes()).hexdigest()
    if digest != spec.sha256:
        raise FeatureError(f"{spec.path} has SHA-256 {digest}, expected {spec.sha256}: the metric "
                           "network changed, so FID/IS would not be comparable")
    net = ImageClassifier(spec.channels, spec.classes, spec.mean, spec.std)
    net.load_state_dict(load_file(str(spec.path)))
    return net.eval().requires_grad_(False)


class Features(nn.Module):
    """torchmetrics-compatible feature extractor: images in [0, 1] → 128-d penultimate features."""

    num_features = ImageClassifier.num_features

    def __init__(self, dataset: str = "mnist"):
        super().__init__()
        self.net = load_classifier(dataset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x.float())


class Logits(nn.Module):
    """torchmetrics-compatible IS extractor: images in [0, 1] → class logits."""

    def __init__(self, dataset: str = "mnist"):
        super().__init__()
        self.net = load_classifier(dataset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())
