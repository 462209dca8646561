"""An affine map from the β-VAE's latents to the space the prior diffuses in, fitted on the training latents.

Why: the VP-SDE assumes data of roughly unit scale in every dimension. The robust β-VAE's latents
are not: after one global scale their per-dimension standard deviations span more than an order of
magnitude (0.05 to 1.2 on MNIST at r = 0.5), so the low-variance dimensions are drowned by noise at
almost every t and the prior barely learns them, while their errors still move the decoded image.

- ``global``: u = z / std(z) (one scalar; the original LDMiss recipe);
- ``per_dim``: u = (z − μ) / σ per dimension;
- ``whiten``: u = Λ^{-1/2} Uᵀ (z − μ) with Σ = UΛUᵀ (PCA whitening; eigenvalues floored at
  ``1e-6``·λ_max so a dead direction cannot blow up).

All three are stored as (mean, forward matrix, inverse matrix), so saving, loading and decoding
do not depend on the kind.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UsageError

KINDS = ("global", "per_dim", "whiten")


class LatentNormalizer(nn.Module):
    def __init__(self, shape: tuple[int, ...], kind: str = "per_dim"):
        super().__init__()
        if kind not in KINDS:
            raise UsageError(f"unknown latent normalisation {kind!r}; choose from {list(KINDS)}")
        self.shape, self.kind = tuple(shape), kind
        d = 1
        for s in self.shape:
            d *= s
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("forward_matrix", torch.eye(d))
        self.register_buffer("inverse_matrix", torch.eye(d))

    @torch.no_grad()
    def fit(self, z: torch.Tensor) -> "LatentNormalizer":
        flat = z.reshape(len(z), -1).double()
        if len(flat) < 2:
            raise UsageError("latent normalisation needs at least 2 latents")
        d = flat.shape[1]
        eye = torch.eye(d, dtype=torch.float64)
        if self.kind == "global":
            mean, std = torch.zeros(d, dtype=torch.float64), flat.std().clamp_min(1e-12)
            fwd, inv = eye / std, eye * std
        elif self.kind == "per_dim":
            mean, std = flat.mean(0), flat.std(0).clamp_min(1e-12)
            fwd, inv = torch.diag(1.0 / std), torch.diag(std)
        else:
            mean = flat.mean(0)
            cov = torch.cov((flat - mean).T)
            lam, vecs = torch.linalg.eigh(cov)
            lam = lam.clamp_min(1e-6 * float(lam.max()))
            fwd, inv = vecs / lam.sqrt(), (vecs * lam.sqrt()).T
        self.mean.copy_(mean.float())
        self.forward_matrix.copy_(fwd.float())
        self.inverse_matrix.copy_(inv.float())
        return self

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Latent → diffusion space."""
        return ((z.reshape(len(z), -1) - self.mean) @ self.forward_matrix).view(z.shape)

    def denormalize(self, u: torch.Tensor) -> torch.Tensor:
        """Diffusion space → latent (differentiable; used inside guidance)."""
        return (u.reshape(len(u), -1) @ self.inverse_matrix + self.mean).view(u.shape)
