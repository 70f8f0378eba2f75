"""CIFAR-100 from generated files in the official pickle format, through the public API."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from harness.data.datasets import DatasetUnavailableError, check_dataset, cifar100, load_dataset
from harness.data.fake_datasets import (
    generated_cifar100_checksums,
    trust_generated_cifar100,
    write_fake_cifar100,
)
from tests.work_watch import assert_fails_at_once, watch_work


@pytest.fixture
def cifar_root(tmp_path):
    write_fake_cifar100(tmp_path, train_per_class=3, test_per_class=2, num_classes=10)
    return tmp_path


def test_loads_uint8_images_and_the_datasets_own_class_ids(cifar_root) -> None:
    data = load_dataset("cifar100", cifar_root, image_size=224)  # fixed size: ignored
    assert data.train_x.shape == (30, 3, 32, 32) and data.test_x.shape == (20, 3, 32, 32)
    assert data.train_x.dtype == np.uint8 and data.train_y.dtype == np.int64
    assert sorted(set(data.train_y.tolist())) == list(range(10))
    assert data.class_names[:2] == ("fine_class_000", "fine_class_001")
    assert data.val_x is None and data.val_y is None
    with open(cifar_root / "cifar-100-python" / "train", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    row = np.asarray(raw["data"][4]).reshape(3, 32, 32)  # channel-major: R plane, G, B
    assert np.array_equal(data.train_x[4], row) and data.train_y[4] == raw["fine_labels"][4]


def test_torchvision_reads_the_generated_files(cifar_root, monkeypatch) -> None:
    import torchvision.datasets.cifar
    from torchvision.datasets import CIFAR100

    monkeypatch.setattr(CIFAR100, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a: True)
    theirs = CIFAR100(str(cifar_root), train=False)
    ours = load_dataset("cifar100", cifar_root)
    assert theirs.targets == ours.test_y.tolist() and theirs.classes == list(ours.class_names)
    assert np.array_equal(theirs.data, ours.test_x.transpose(0, 2, 3, 1))


def test_check_refuses_files_that_are_not_the_official_ones(cifar_root) -> None:
    with pytest.raises(DatasetUnavailableError) as info:
        check_dataset("cifar100", cifar_root)  # torchvision's real md5 table
    message = str(info.value)
    for name in ("train", "test", "meta"):
        official = cifar100._torchvision_md5()[f"cifar-100-python/{name}"]
        assert f"cifar-100-python/{name}: md5" in message and official in message
    assert not (cifar_root / "cilbench-manifests" / "cifar100.json").exists()


def test_trusted_generated_files_pass_the_check_afterwards(cifar_root) -> None:
    trust_generated_cifar100(cifar_root)
    check_dataset("cifar100", cifar_root)  # no override any more: the manifest vouches
    with pytest.raises(DatasetUnavailableError, match="not the official"):
        check_dataset("cifar100", cifar_root, full=True)  # --verify: official md5s again
    with generated_cifar100_checksums(cifar_root):
        check_dataset("cifar100", cifar_root, full=True)


def test_a_truncated_pickle_is_named(cifar_root) -> None:
    trust_generated_cifar100(cifar_root)
    train = cifar_root / "cifar-100-python" / "train"
    train.write_bytes(train.read_bytes()[:-5000])
    with pytest.raises(DatasetUnavailableError) as info:
        check_dataset("cifar100", cifar_root)
    assert "cifar-100-python/train:" in str(info.value) and "truncated" in str(info.value)
    assert "cifar-100-python/test" not in str(info.value)
    with pytest.raises(DatasetUnavailableError, match="train is corrupt"):
        load_dataset("cifar100", cifar_root)


def test_a_same_size_edit_of_a_pickle_is_caught_on_every_check(cifar_root) -> None:
    trust_generated_cifar100(cifar_root)
    meta = cifar_root / "cifar-100-python" / "meta"
    stat = meta.stat()
    body = bytearray(meta.read_bytes())
    body[-3] ^= 0xFF
    meta.write_bytes(bytes(body))
    os.utime(meta, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime
    with pytest.raises(DatasetUnavailableError, match="cifar-100-python/meta: content changed"):
        check_dataset("cifar100", cifar_root)


def test_missing_cifar100_fails_fast_with_instructions(tmp_path) -> None:
    for attempt in (check_dataset, load_dataset):
        with watch_work() as work, pytest.raises(DatasetUnavailableError) as info:
            attempt("cifar100", tmp_path / "nothing")
        assert_fails_at_once(work)
        assert work.opened_under(tmp_path) == []
        message = str(info.value)
        assert cifar100.SOURCE_URL in message and "cifar-100-python/" in message
        assert "--data-root DIR" in message and "$CILBENCH_DATA" in message
        assert "cilbench data --fetch cifar100 --data-root DIR" in message


def test_one_missing_pickle_is_named(cifar_root) -> None:
    (cifar_root / "cifar-100-python" / "test").unlink()
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("cifar100", cifar_root)
    assert "1 of 3 expected files are missing:\n  cifar-100-python/test" in str(info.value)
