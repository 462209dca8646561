"""What ``impute`` returns: the imputed images, their spread over draws, and what one draw cost."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import UsageError


@dataclass(frozen=True)
class Cost:
    """The work of one imputation draw, per image: solver ``steps``, forward network evaluations
    (``nfe``) and backward passes through a network (``backward_nfe``, guidance's gradients).
    Non-diffusion methods say what they do in the same units (``vae``'s decoder inversion: one
    forward and one backward pass per step); the per-pixel mean costs nothing."""

    steps: int = 0
    nfe: float = 0.0
    backward_nfe: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Imputation:
    """Imputed images in [0, 1] (N×C×H×W). ``mean`` is the point estimate (the mean of the draws);
    ``draws`` (D×N×C×H×W) and ``std`` (per-pixel spread over draws) are set when draws > 1; ``cost``
    is the work of one draw per image."""

    mean: np.ndarray
    draws: np.ndarray | None = None
    std: np.ndarray | None = None
    cost: Cost = Cost()

    @property
    def first(self) -> np.ndarray:
        """One draw (the first): what single-draw metrics score, since a mean of draws is blurred."""
        return self.draws[0] if self.draws is not None else self.mean

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel central ``level`` interval (lo, hi) over the draws (needs draws ≥ 2)."""
        if self.draws is None:
            raise UsageError("an interval needs multiple imputation: impute(..., draws=D) with D ≥ 2")
        from ..metrics.uncertainty import central_interval
        return central_interval(self.draws, level)
