"""Imputation by any registered conditioner — the one batch/progress loop the diffusion methods share.

A method with a diffusion prior says three things: its prior in its diffusion space
(:meth:`_diffusion_prior`), how that space meets pixels (:meth:`_observation`), and how to turn a
solution into pixels (:meth:`_to_pixels`). Every conditioner of :mod:`ldmiss.diffusion.conditioners`
that the space supports then works through ``impute(..., mode=name)``, with no mode branching here.
``impute_modes`` stays the modes the sweep evaluates; :meth:`supported_modes` is all of them.
"""
from __future__ import annotations

import torch

from ..diffusion.conditioners import CONDITIONERS, Observation, Prior, ReplacementConfig, get_conditioner, run_conditioner
from .common import batched


class Conditioned:
    elementwise = False  # the diffusion space is pixel space up to an affine map (pixel replacement works)

    # ---- what a method supplies ----
    def _diffusion_prior(self) -> Prior:
        raise NotImplementedError

    def _observation(self, x_obs: torch.Tensor, obs_mask: torch.Tensor) -> Observation:
        raise NotImplementedError

    def _to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _impute_steps(self) -> int:
        """Steps of one conditioned solve when the conditioner's config says 0."""
        raise NotImplementedError

    def _impute_batch_size(self) -> int:
        raise NotImplementedError

    # ---- shared ----
    @classmethod
    def supported_modes(cls) -> tuple[str, ...]:
        rest = [n for n, c in CONDITIONERS.items() if c.supports(cls.elementwise) and n not in cls.impute_modes]
        return tuple(cls.impute_modes) + tuple(sorted(rest))

    def conditioner_config(self, mode: str):
        """The config a conditioner runs with: ``guidance`` → ``config.guidance``; pixel
        ``replacement`` → the method's ``resample_jumps``; the others → ``config.impute.<mode>``."""
        if mode == "guidance":
            return self.config.guidance
        if mode == "replacement":
            return ReplacementConfig(steps=0, resample_jumps=getattr(self.config, "resample_jumps", 1))
        return getattr(self.config.impute, mode)

    def impute_cost(self, mode: str, steps: int | None = None) -> dict:
        """Steps and network evaluations per image of one imputation draw in ``mode``, from the config."""
        cond, cfg = get_conditioner(mode), self.conditioner_config(mode)
        steps = steps or cfg.steps or self._impute_steps()
        return {"steps": steps, "nfe": cond.nfe(cfg, steps)}

    def _impute(self, x, obs_mask, mode, generator, progress, steps: int | None = None):
        cfg = self.conditioner_config(mode)
        steps = self.impute_cost(mode, steps)["steps"]
        prior = self._diffusion_prior()

        def one_batch(xo, m, tick):
            u = run_conditioner(mode, prior, self._observation(xo, m), generator, cfg, steps, tick)
            with torch.no_grad():
                return self._to_pixels(u)

        out = batched(one_batch, x, obs_mask, self._impute_batch_size(), self.device, f"{self.name} impute ({mode})",
                      progress, steps)
        self.meta.setdefault("impute_cost", {})[mode] = {"steps": steps, "nfe": prior.nfe,
                                                         "backward_nfe": prior.backward_nfe}
        return out
