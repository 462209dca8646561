"""Calibrated intervals (ldmiss/calibration.py): the split-conformal procedure reaches nominal coverage
on exchangeable synthetic data with a mis-scaled sampler, is saved with the model, and refuses what
it cannot do."""
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ldmiss import rng
from ldmiss.calibration import Calibration, CalibrationError
from ldmiss.methods.base import Method
from ldmiss.methods.result import Cost
from ldmiss.missing import mcar_mask

TRUE_STD, SAMPLER_STD = 0.1, 0.03  # the sampler's spread is 3.3× too small


@dataclass
class _Cfg:
    fill_value: float = 0.0


class OverConfident(Method):
    """Pixels are N(0.5, 0.1²), independent; its draws are N(0.5, 0.03²): the right centre, too narrow."""

    name = "overconfident"
    config_cls = _Cfg
    generative = False

    def _build(self, image_shape):
        self.level = torch.zeros(())

    def _parts(self):
        return {"level": self.level}

    def _fit(self, x, obs_mask, generator, progress, options):
        self.level = torch.tensor(0.5)

    def _impute(self, x, obs_mask, mode, generator, progress, steps=None):
        return (self.level + SAMPLER_STD * rng.randn(x.shape, generator)).clamp(0, 1), Cost()


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = (0.5 + TRUE_STD * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1)
    return x, mcar_mask(x.shape, 0.5, seed=10_000 + seed)  # a stream apart from the pixels'


def _coverage(res, x, m, level, calibrated):
    lo, hi = res.interval(level, calibrated=calibrated)
    miss = m.numpy() == 0
    return float(((x.numpy() >= lo) & (x.numpy() <= hi))[miss].mean())


def test_conformal_intervals_reach_nominal_coverage_where_the_draws_do_not(tmp_path):
    x, m = _data(400, 0)
    model = OverConfident(None, device="cpu").fit(x * m, m, progress=False)
    cal = model.calibrate((x * m).numpy(), m.numpy(), images=300, draws=8, seed=1)
    assert isinstance(cal, Calibration) and cal.images == 300 and sum(cal.counts) == cal.n_pooled
    xt, mt = _data(1000, 7)  # fresh, exchangeable test images at 50% MCAR
    res = model.impute((xt * mt).numpy(), mt.numpy(), draws=8, seed=2)
    raw90 = _coverage(res, xt, mt, 0.9, calibrated=False)
    assert raw90 < 0.5  # the draws alone: badly over-confident
    for level in (0.5, 0.9):
        assert abs(_coverage(res, xt, mt, level, calibrated=None) - level) < 0.02
    lo, hi = res.interval(0.9)
    seen = mt.numpy() > 0
    assert (lo[seen] == hi[seen]).all() and (lo <= hi).all()  # observed pixels: no width


def test_a_calibration_is_saved_with_the_model_and_works_for_a_deterministic_imputer(tmp_path):
    """``mean`` gives D identical draws (std 0): the score is |error| / ε, so the interval is the
    absolute-residual conformal one — still nominal on exchangeable data — and it survives save/load."""
    from ldmiss.methods import get_method_class, load_method
    x, m = _data(400, 0)
    model = get_method_class("mean")(None, device="cpu").fit(x * m, m, progress=False)
    model.calibrate((x * m).numpy(), m.numpy(), images=300, draws=2, seed=1)
    model.save(tmp_path / "m")
    again = load_method(tmp_path / "m", device="cpu")
    xt, mt = _data(1000, 7)
    res, res2 = (mm.impute((xt * mt).numpy(), mt.numpy(), draws=2, seed=2) for mm in (model, again))
    np.testing.assert_array_equal(res2.interval(0.9)[0], res.interval(0.9)[0])
    assert abs(_coverage(res2, xt, mt, 0.9, calibrated=True) - 0.9) < 0.02
    assert _coverage(res2, xt, mt, 0.9, calibrated=False) < 0.05  # D equal draws: a zero-width interval


def test_calibration_refuses_what_it_cannot_do():
    x, m = _data(30, 0)
    model = OverConfident(None, device="cpu").fit(x * m, m, progress=False)
    with pytest.raises(CalibrationError, match="at least 20 images"):
        model.calibrate((x[:10] * m[:10]).numpy(), m[:10].numpy())
    with pytest.raises(CalibrationError, match="draws ≥ 2"):
        model.calibrate((x * m).numpy(), m.numpy(), draws=1)
    with pytest.raises(CalibrationError, match="inside \\(0, 1\\)"):
        model.calibrate((x * m).numpy(), m.numpy(), hide=(0.0, 0.5))
    res = model.impute((x * m).numpy(), m.numpy(), draws=3)
    with pytest.raises(CalibrationError, match="level must be in"):
        res.interval(1.5)
    with pytest.raises(Exception, match="no calibration"):
        res.interval(0.9, calibrated=True)
