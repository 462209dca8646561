"""How a fit is run, as opposed to what it learns: where shared components are cached and where
training loops checkpoint. Passed to ``Method._fit`` as one argument; none of it changes the result
(a cached or resumed fit is bit-identical on the CPU to a fresh one)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FitOptions:
    """``cache_dir``: where components that several methods train identically (the β-VAE of
    ``ldmiss`` and ``vae``) are kept and reused. ``checkpoint_dir``: where each training stage saves
    its state every ``checkpoint_every`` seconds, so a killed fit resumes."""

    cache_dir: Path | None = None
    checkpoint_dir: Path | None = None
    checkpoint_every: float = 300.0

    def train_options(self, stage: str) -> dict:
        """:func:`ldmiss.training.train`'s checkpoint options for one training stage (none without a dir)."""
        if self.checkpoint_dir is None:
            return {}
        return {"checkpoint": Path(self.checkpoint_dir) / f"{stage}.ckpt", "checkpoint_every": self.checkpoint_every}
