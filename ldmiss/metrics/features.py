"""The shipped MNIST feature network (penultimate features for FID, logits for IS).

Trained by ``scripts/train_classifier.py`` (seed 0, 4 epochs, 99.46% MNIST test accuracy); the weights file travels inside the
package and is verified against CLASSIFIER_SHA256 before use, so every number computed with it is
computed with the same network.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..nets import MNISTClassifier

CLASSIFIER_PATH = Path(__file__).with_name("mnist_classifier.safetensors")
CLASSIFIER_SHA256 = "183c08dd17f7a57f77c95c725420a6d002af56ace2ef7fcc33fdaf420f35e532"


class FeatureError(RuntimeError):
    pass


@lru_cache(maxsize=1)
def load_classifier() -> MNISTClassifier:
    if not CLASSIFIER_PATH.is_file():
        raise FeatureError(f"{CLASSIFIER_PATH} is missing; reinstall ldmiss or run scripts/train_classifier.py")
    digest = hashlib.sha256(CLASSIFIER_PATH.read_bytes()).hexdigest()
    if digest != CLASSIFIER_SHA256:
        raise FeatureError(f"{CLASSIFIER_PATH} has SHA-256 {digest}, expected {CLASSIFIER_SHA256}: the metric "
                           "network changed, so FID/IS would not be comparable")
    net = MNISTClassifier()
    net.load_state_dict(load_file(str(CLASSIFIER_PATH)))
    return net.eval().requires_grad_(False)


class Features(nn.Module):
    """torchmetrics-compatible feature extractor: images in [0, 1] → 128-d penultimate features."""

    num_features = MNISTClassifier.num_features

    def __init__(self):
        super().__init__()
        self.net = load_classifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x.float())


class Logits(nn.Module):
    """torchmetrics-compatible IS extractor: images in [0, 1] → class logits."""

    def __init__(self):
        super().__init__()
        self.net = load_classifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())
