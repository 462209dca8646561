"""The `photos` dataset: real photographs from scikit-image's wheel, verified, cut into patches, with
train and test from different photos."""
import numpy as np
import pytest

from ldmiss.data import DataUnavailable, dataset_info, load_dataset
from ldmiss.data.photos import TEST, TRAIN, patches, photo_path


def test_patches_are_the_windows_at_the_stride():
    img = np.arange(6 * 8 * 3).reshape(6, 8, 3)
    p = patches(img, 4, 2)
    assert p.shape == (2 * 3, 3, 4, 4)  # rows 0, 2; columns 0, 2, 4
    np.testing.assert_array_equal(p[4], img[2:6, 2:6].transpose(2, 0, 1))


def test_splits_come_from_different_photos_and_are_verified():
    train, test = load_dataset("photos", "train"), load_dataset("photos", "test")
    assert train.images.shape == (16077, 3, 32, 32) and test.images.shape == (1434, 3, 32, 32)
    assert train.images.dtype == np.uint8 and set(np.unique(train.labels)) == set(range(len(TRAIN)))
    assert not set(TRAIN) & set(TEST)
    info = dataset_info("photos")
    assert info.shape == (3, 32, 32) and info.metric_network is None and info.likelihood == "gaussian"


def test_a_changed_file_is_refused_naming_what_was_tried(tmp_path):
    name = next(iter(TRAIN))
    (tmp_path / name).write_bytes(b"not the photo")
    with pytest.raises(DataUnavailable, match="SHA-256") as err:
        photo_path(name, "0" * 64, data_dir=tmp_path)
    assert str(tmp_path / name) in str(err.value)
    assert photo_path(name, TRAIN[name], data_dir=tmp_path).name == name  # the installed copy is next in line
