"""Dataset loaders: offline sources first, a clear error (not a hang) when data is missing."""

from __future__ import annotations

import gzip
import urllib.error

import numpy as np
import pytest

from harness.data import datasets
from harness.data.datasets import (
    DatasetUnavailableError,
    check_dataset,
    fashion_mnist,
    load_dataset,
)
from tests.work_watch import assert_fails_at_once, watch_work


def _write_idx(path, array: np.ndarray) -> None:
    header = (0x08 << 8 | array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def no_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "no-such-package")


def test_digits_needs_no_download() -> None:
    data = load_dataset("sklearn-digits")
    assert data.train_x.shape == (1797, 1, 8, 8) and data.test_x is None
    assert 0.0 <= data.train_x.min() and data.train_x.max() <= 1.0


def test_fashion_mnist_reads_idx_files_from_the_data_root(no_debian_package, tmp_path) -> None:
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.RandomState(0)
    _write_idx(raw / "train-images-idx3-ubyte.gz", rng.randint(0, 256, (20, 28, 28)))
    _write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", np.full((10, 28, 28), 255))
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    data = load_dataset("fashion-mnist", tmp_path / "root")
    assert data.train_x.shape == (20, 1, 28, 28) and data.test_x.shape == (10, 1, 28, 28)
    assert data.train_y.tolist() == [i % 10 for i in range(20)]
    assert data.train_x.dtype == np.uint8 and np.all(data.test_x == 255)


def test_missing_fashion_mnist_says_how_to_get_it(no_debian_package, tmp_path, monkeypatch):
    import torchvision.datasets

    class NoDownloads:  # loading must never try to download: only `cilbench data --fetch` does
        def __init__(self, *args, **kwargs):
            raise AssertionError("load_dataset tried to download")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", NoDownloads)
    for attempt in (load_dataset, check_dataset):
        with watch_work() as work, pytest.raises(DatasetUnavailableError) as info:
            attempt("fashion-mnist", tmp_path / "empty")
        assert_fails_at_once(work)
        assert work.opened_under(tmp_path) == []  # the files' absence is the whole check
        message = str(info.value)
        assert "apt-get install dataset-fashion-mnist" in message
        assert str(tmp_path / "empty") in message
        assert "cilbench data --fetch fashion-mnist --data-root DIR" in message


def test_fetching_fashion_mnist_offline_fails_at_once_with_instructions(tmp_path, monkeypatch):
    import torchvision.datasets

    class OfflineFashionMNIST:  # what torchvision does offline; never touch the network here
        def __init__(self, *args, **kwargs):
            raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", OfflineFashionMNIST)
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        datasets.fetch_dataset("fashion-mnist", tmp_path)


def test_truncated_fashion_mnist_is_named(no_debian_package, tmp_path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, n in (("train", 20), ("t10k", 10)):
        _write_idx(raw / f"{name}-images-idx3-ubyte.gz", np.zeros((n, 28, 28)))
        _write_idx(raw / f"{name}-labels-idx1-ubyte.gz", np.zeros(n))
    check_dataset("fashion-mnist", tmp_path)
    path = raw / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        body = f.read()
    with gzip.open(path, "wb") as f:
        f.write(body[:-100])
    with pytest.raises(DatasetUnavailableError, match="t10k-images-idx3-ubyte.gz is truncated"):
        check_dataset("fashion-mnist", tmp_path)


@pytest.mark.skipif(
    not fashion_mnist._has_idx_files(datasets.DEBIAN_FASHION_MNIST),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_debian_fashion_mnist_package_loads() -> None:
    data = load_dataset("fashion-mnist")
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert sorted(np.unique(data.train_y).tolist()) == list(range(10))
