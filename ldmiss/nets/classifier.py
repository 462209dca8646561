"""Small CNN whose penultimate features (128-d) and logits define the project's FID and IS.

Inception features are meaningless on 28×28 digits; like MisGAN and TF-GAN's MNIST score we use a
classifier trained on the dataset itself (``scripts/train_classifier.py``), shipped with the package:
one per named dataset (metrics/features.py). The input standardisation (``mean``, ``std``) is part
of the network's definition, not of its weights, so every dataset's network has the same state dict.
"""
from __future__ import annotations

import torch
from torch import nn


class ImageClassifier(nn.Module):
    num_features = 128

    def __init__(self, channels: int = 1, classes: int = 10, mean: float = 0.1307, std: float = 0.3081):
        super().__init__()
        self.mean, self.std = float(mean), float(std)
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14×14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7×7
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 3×3
            nn.Flatten(), nn.Linear(128 * 9, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations for images in [0, 1]."""
        return self.body((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MNISTClassifier = ImageClassifier  # the name it shipped under (its defaults are MNIST's)
