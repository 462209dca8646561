"""FID/IS on the shipped classifier behave as they must on known cases; MSE counts missing pixels only."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ldmiss.metrics import FIDReference, inception_score, load_classifier, missing_mse


@pytest.fixture(scope="module")
def test_images(mnist_test):
    return torch.from_numpy(mnist_test.images).float() / 255


@pytest.mark.slow
def test_shipped_classifier_is_accurate(test_images, mnist_test):
    with torch.inference_mode():
        pred = load_classifier()(test_images).argmax(1).numpy()
    assert (pred == mnist_test.labels).mean() >= 0.99


@pytest.mark.slow
def test_fid_known_cases(test_images):
    perm = torch.randperm(len(test_images), generator=torch.Generator().manual_seed(0))
    a, b = test_images[perm[:5000]], test_images[perm[5000:]]
    ref = FIDReference(a)
    assert abs(ref.fid(a)) < 1e-3
    halves = ref.fid(b)
    assert halves < 10
    assert ref.fid(F.avg_pool2d(b, 3, 1, 1)) > 10 * halves
    assert ref.fid(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(1))) > 100 * halves
    assert ref.fid(b) == ref.fid(b)  # the reference is not consumed by use


@pytest.mark.slow
def test_inception_score_known_cases(test_images):
    real, _ = inception_score(test_images)
    assert 9.0 < real <= 10.0
    const, _ = inception_score(torch.full((200, 1, 28, 28), 0.3))
    assert const == pytest.approx(1.0, abs=1e-3)


def test_mse_only_over_missing_pixels():
    truth = np.zeros((2, 1, 2, 2), np.float32)
    imputed = truth.copy()
    mask = np.ones_like(truth)
    mask[0, 0, 0, 0] = 0
    imputed[0, 0, 0, 0] = 0.5  # missing: counts
    imputed[1, 0, 1, 1] = 1.0  # observed: must not count
    assert missing_mse(imputed, truth, mask) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        missing_mse(imputed, truth, np.ones_like(truth))
