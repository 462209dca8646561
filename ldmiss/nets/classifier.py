"""Small MNIST CNN whose penultimate features (128-d) and logits define the project's FID and IS.

Inception features are meaningless on 28×28 digits; like MisGAN and TF-GAN's MNIST score we use a
classifier trained on MNIST itself (``scripts/train_classifier.py``), shipped with the package.
"""
from __future__ import annotations

import torch
from torch import nn


class MNISTClassifier(nn.Module):
    num_features = 128

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14×14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7×7
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 3×3
            nn.Flatten(), nn.Linear(128 * 9, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations for images in [0, 1]."""
        return self.body((x - 0.1307) / 0.3081)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
