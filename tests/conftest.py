"""Shared fixtures: real MNIST (fetched/verified by the package's own chain) and tiny configs."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ldmiss.data import load_mnist

torch.set_num_threads(int(os.environ.get("LDMISS_TEST_THREADS", "2")))  # CI: 2 cores; 1 beside a busy machine

TINY = {
    "ldmiss": {"vae": {"width": 8, "train": {"steps": 30, "batch_size": 32}},
               "prior": {"net": {"width": 32, "depth": 1}, "train": {"steps": 30, "batch_size": 32, "warmup_steps": 5},
                         "sampler": {"steps": 4, "batch_size": 16}}},
    "ldmiss-em": {"vae": {"width": 8, "train": {"steps": 30, "batch_size": 32}},
                  "prior": {"net": {"width": 32, "depth": 1}, "train": {"steps": 30, "batch_size": 32, "warmup_steps": 5},
                            "sampler": {"steps": 4, "batch_size": 16}},
                  "em": {"steps": 2, "train": {"steps": 10, "batch_size": 32, "warmup_steps": 2}}},
    "ldmiss-mnar": {"vae": {"width": 8, "train": {"steps": 30, "batch_size": 32}},
                    "prior": {"net": {"width": 32, "depth": 1}, "train": {"steps": 30, "batch_size": 32,
                                                                           "warmup_steps": 5},
                              "sampler": {"steps": 4, "batch_size": 16}}},
    "ddpm": {"net": {"base": 8, "mults": [1, 2]}, "train": {"steps": 10, "batch_size": 16},
             "sampler": {"steps": 4, "batch_size": 16}},
    "ambient": {"net": {"base": 8, "mults": [1, 2]}, "train": {"steps": 10, "batch_size": 16},
                "sampler": {"steps": 4, "batch_size": 16}},
    "diem": {"net": {"base": 8, "mults": [1, 2]}, "train": {"steps": 5, "batch_size": 16},
             "sampler": {"steps": 3, "batch_size": 64}, "laps": 2, "gaussian_rank": 4, "gaussian_iterations": 2,
             "e_step": {"steps": 2}, "e_step_fraction": 0.5},
    "diffputer": {"net": {"base": 8, "mults": [1, 2]}, "train": {"steps": 5, "batch_size": 16},
                  "sampler": {"steps": 3, "batch_size": 64}, "em_iterations": 2},
    "mean": {},
    "biharmonic": {},
    "neighbours": {},
    "vae": {"vae": {"width": 8, "train": {"steps": 30, "batch_size": 32}, "map_steps": 3}},
    "miwae": {"vae": {"width": 8, "iw_samples": 4, "train": {"steps": 30, "batch_size": 32}}, "impute_samples": 16},
    "notmiwae": {"vae": {"width": 8, "iw_samples": 4, "train": {"steps": 30, "batch_size": 32}}, "impute_samples": 16},
}


@pytest.fixture(scope="session")
def mnist_test():
    return load_mnist("test")


@pytest.fixture(scope="session")
def small_batch(mnist_test):
    """64 real test digits in [0, 1] with a fixed 50% MCAR mask."""
    from ldmiss.missing import mcar_mask
    x = torch.from_numpy(mnist_test.images[:64]).float() / 255
    return x, mcar_mask(x.shape, 0.5, seed=0)


@pytest.fixture(scope="session")
def fitted(small_batch):
    """One tiny fitted model per method (session-scoped: fitting is the slow part)."""
    from ldmiss.methods import get_method_class
    x, m = small_batch
    return {name: get_method_class(name)(None, device="cpu", **cfg).fit(x * m, m, seed=0, progress=False)
            for name, cfg in TINY.items()}


def as_np(t):
    return t.numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


@pytest.fixture
def one_thread():
    """Small MLPs (a 4-pixel denoiser, a 2-d latent prior) train fastest on one thread, and do not
    crawl when the cores are busy (two OpenMP threads on a loaded 2-core host made such a test 40×
    slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
