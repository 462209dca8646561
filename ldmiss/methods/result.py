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
    obs_mask: np.ndarray | None = None  # what was observed (1), for the calibrated intervals' buckets
    calibration: object | None = None  # the model's ldmiss.calibration.Calibration, if it was calibrated

    @property
    def first(self) -> np.ndarray:
        """One draw (the first): what single-draw metrics score, since a mean of draws is blurred."""
        return self.draws[0] if self.draws is not None else self.mean

    def interval(self, level: float = 0.9, calibrated: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel interval (lo, hi) of nominal ``level`` (needs draws ≥ 2). With a calibrated model
        (``model.calibrate(...)``) the split-conformal one, mean ± q̂(level)·(std + ε), whose coverage is
        ``level`` where calibration and test pixels are exchangeable (ldmiss/calibration.py);
        otherwise — or ``calibrated=False`` — the draws' own central interval, which is over-confident
        for every imputer here."""
        from ..calibration import check_level
        check_level(level)
        if self.draws is None:
            raise UsageError("an interval needs multiple imputation: impute(..., draws=D) with D ≥ 2")
        if calibrated and self.calibration is None:
            raise UsageError("this model has no calibration: run model.calibrate(x_train, mask) first")
        if self.calibration is not None and calibrated is not False:
            from ..calibration import interval
            return interval(self.mean, self.std, self.obs_mask, level, self.calibration)
        from ..metrics.uncertainty import central_interval
        return central_interval(self.draws, level)
