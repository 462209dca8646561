"""Where (if anywhere) a learnt model overtakes biharmonic inpainting as holes grow: square holes of
size 8, 12, 16 and 20 on the `photos` preset's test patches (500, seed 0), one draw, missing-pixel
MSE and SSIM of biharmonic, the model, and the model with ``refine = biharmonic``. One JSON line per
(size, method) on stdout.

    python bench/hole_crossover.py results/photos/photos_train-mcar_test-block-size8_testrate0.25/ldmiss/rate0.50_seed0/model
"""
import json
import sys

import torch

from ldmiss.experiments.config import load_preset
from ldmiss.experiments.protocol import _test_order, images
from ldmiss.methods import get_method_class, load_method
from ldmiss.metrics import missing_mse, missing_ssim
from ldmiss.missing import apply_mask, make_mask

HOLES = ((8, 0.25), (12, 0.14), (16, 0.25), (20, 0.39))  # (side, covered fraction): one hole but for 8


def main(model_dir: str, n: int = 500) -> None:
    cfg = load_preset("photos")
    group = next(g for _, g in cfg.tagged_groups())
    test = images(group.dataset, "test", None, group.dataset_options)
    x = test[_test_order(group, 0)[:n]]
    model = load_method(model_dir, device="cpu")
    biharmonic = get_method_class("biharmonic")(None, device="cpu").fit(x[:2], torch.ones_like(x[:2]), progress=False)
    for size, rate in HOLES:
        m = make_mask("block", x, rate, 7, size=size)
        for name, method, refine in (("biharmonic", biharmonic, None), ("ldmiss", model, "none"),
                                     ("ldmiss+refine", model, "biharmonic")):
            if refine:
                method.set_inference_options({"refine": refine})
            r = method.impute(apply_mask(x, m), m, seed=0, progress=False)
            print(json.dumps({"size": size, "rate": rate, "method": name, "mse": missing_mse(r.first, x, m),
                              "ssim": missing_ssim(r.first, x, m)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
