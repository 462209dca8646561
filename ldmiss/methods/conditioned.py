"""Imputation by any registered conditioner — the one batch/progress loop the diffusion methods share.

A method with a diffusion prior says three things: its prior in its diffusion space
(:meth:`_diffusion_prior`), how that space meets pixels (:meth:`_observation`), and how to turn a
solution into pixels (:meth:`_to_pixels`). Every conditioner of :mod:`ldmiss.diffusion.conditioners`
that the space supports then works through ``impute(..., mode=name)``, configured by
``config.impute.<name>`` (``steps`` 0 = the prior sampler's steps), with no mode branching here.
``impute_modes`` stays the modes the sweep evaluates; :meth:`supported_modes` is all of them.
"""
from __future__ import annotations

import torch

from ..diffusion.conditioners import CONDITIONERS, Observation, Prior, get_conditioner, run_conditioner
from .common import batched
from .result import Cost


class Conditioned:
    conditionable = True
    elementwise = False  # the diffusion space is pixel space up to an affine map (pixel replacement works)

    # ---- what a method supplies ----
    def _diffusion_prior(self, generator=None) -> Prior:
        """The prior in its diffusion space; ``generator``: the solve's, for priors that draw
        something of their own once per solve (Ambient's sampling masks)."""
        raise NotImplementedError

    def _observation(self, x_obs: torch.Tensor, obs_mask: torch.Tensor) -> Observation:
        raise NotImplementedError

    def _to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sampler_config(self):
        """The prior's own ``SamplerConfig``: its steps are every conditioner's default."""
        raise NotImplementedError

    # ---- shared ----
    @classmethod
    def supported_modes(cls) -> tuple[str, ...]:
        rest = [n for n, c in CONDITIONERS.items() if c.supports(cls.elementwise) and n not in cls.impute_modes]
        return tuple(cls.impute_modes) + tuple(sorted(rest))

    def conditioner_config(self, mode: str):
        """The config ``mode`` runs with: ``config.impute.<mode>``."""
        return getattr(self.config.impute, mode)

    def impute_steps(self, mode: str, steps: int | None = None) -> int:
        """Steps of one ``mode`` solve: ``steps`` if given, else the conditioner's own ``steps``
        setting, else (0) the prior sampler's."""
        return int(steps or self.conditioner_config(mode).steps or self._sampler_config().steps)

    def planned_cost(self, mode: str, steps: int | None = None) -> Cost:
        """What one ``mode`` draw will cost per image, from the conditioner's cost formula (before running)."""
        steps = self.impute_steps(mode, steps)
        return Cost(steps=steps, nfe=get_conditioner(mode).planned_nfe(self.conditioner_config(mode), steps,
                                                                        self._sampler_config().method))

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        cfg = self.conditioner_config(mode)
        steps = self.impute_steps(mode, steps)
        priors = []

        def one_batch(xo, m, tick):
            priors.append(self._diffusion_prior(generator))  # one per solve (Ambient draws its masks per solve)
            u = run_conditioner(mode, priors[-1], self._observation(xo, m), generator, cfg, steps, tick)
            with torch.no_grad():
                return self._to_pixels(u)

        out = batched(one_batch, x, obs_mask, self._sampler_config().batch_size, self.device,
                      f"{self.name} impute ({mode})", progress, steps)
        images = max(sum(p.images for p in priors), 1)
        return out, Cost(steps=steps, nfe=sum(p.rows for p in priors) / images,
                         backward_nfe=sum(p.backward_rows for p in priors) / images)
