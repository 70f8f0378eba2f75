"""The manifest check: missing, partial and corrupt data are named file by file, fast."""

from __future__ import annotations

import json
import os

import pytest

from harness.data.datasets import (
    DATASETS,
    DatasetUnavailableError,
    check_dataset,
    image_cache,
    load_dataset,
)
from harness.data.fake_datasets import write_fake_aircraft, write_fake_cars
from tests.work_watch import assert_fails_at_once, watch_work

IMAGES = "fgvc-aircraft-2013b/data/images"
SOURCES = {
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar.html",
    "fgvc-aircraft": "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
    "stanford-cars": "jessicali9530/stanford-cars-dataset",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist",
}
LAYOUTS = {"cifar100": "<root>/cifar-100-python/", "fgvc-aircraft": "images_variant_train.txt",
           "stanford-cars": "cars_test_annos_withlabels.mat",
           "fashion-mnist": "<root>/FashionMNIST/raw/"}  # fmt: skip


@pytest.fixture
def aircraft_root(tmp_path):
    write_fake_aircraft(tmp_path, per_class_per_split=2, num_classes=15, image_size=(40, 40))
    return tmp_path


def _error(root, *, full: bool = False) -> str:
    with pytest.raises(DatasetUnavailableError) as info:
        check_dataset("fgvc-aircraft", root, full=full)
    return str(info.value)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_missing_data_fails_within_a_second_with_everything_needed(name, tmp_path, monkeypatch):
    import harness.data.datasets

    monkeypatch.setattr(harness.data.datasets, "DEBIAN_FASHION_MNIST", tmp_path / "no-package")
    for attempt in (check_dataset, lambda n, r: load_dataset(n, r, image_size=32)):
        with watch_work() as work, pytest.raises(DatasetUnavailableError) as info:
            attempt(name, tmp_path / "empty")
        assert_fails_at_once(work)
        assert work.opened_under(tmp_path) == []
        message = str(info.value)
        assert SOURCES[name] in message and LAYOUTS[name] in message
        assert "--data-root DIR" in message and "$CILBENCH_DATA" in message
        assert "~/.cache/cilbench/data" in message and str(tmp_path / "empty") in message
        assert f"cilbench data --fetch {name} --data-root DIR" in message


def test_first_check_records_names_sizes_and_sha256(aircraft_root) -> None:
    check_dataset("fgvc-aircraft", aircraft_root)
    manifest = json.loads((aircraft_root / "cilbench-manifests/fgvc-aircraft.json").read_text())
    files = manifest["files"]
    assert len(files) == 4 + 90  # variants + 3 split files + every listed image
    entry = files[f"{IMAGES}/1000000.jpg"]
    assert entry["size"] == (aircraft_root / IMAGES / "1000000.jpg").stat().st_size
    assert len(entry["sha256"]) == 64


def test_a_deleted_image_is_named(aircraft_root) -> None:
    check_dataset("fgvc-aircraft", aircraft_root)
    (aircraft_root / IMAGES / "1000007.jpg").unlink()
    message = _error(aircraft_root)
    assert "1 of 94 expected files are missing:\n  " + f"{IMAGES}/1000007.jpg" in message
    assert "cilbench data --fetch fgvc-aircraft" in message


def test_many_missing_files_are_named_then_counted(aircraft_root) -> None:
    for path in sorted((aircraft_root / IMAGES).iterdir())[:30]:
        path.unlink()
    message = _error(aircraft_root)
    assert message.count(f"  {IMAGES}/") == 20 and "... and 10 more" in message


def test_a_missing_split_file_is_named(aircraft_root) -> None:
    (aircraft_root / "fgvc-aircraft-2013b/data/images_variant_val.txt").unlink()
    assert "fgvc-aircraft-2013b/data/images_variant_val.txt" in _error(aircraft_root)


def test_a_replaced_jpeg_is_named_after_the_manifest_was_built(aircraft_root) -> None:
    check_dataset("fgvc-aircraft", aircraft_root)
    victim = aircraft_root / IMAGES / "1000011.jpg"
    victim.write_bytes((aircraft_root / IMAGES / "1000012.jpg").read_bytes() + b"\0")
    message = _error(aircraft_root)
    assert f"{IMAGES}/1000011.jpg: " in message and "the manifest says" in message
    assert "1000012.jpg" not in message


def test_a_truncated_jpeg_is_named(aircraft_root) -> None:
    check_dataset("fgvc-aircraft", aircraft_root)
    victim = aircraft_root / IMAGES / "1000005.jpg"
    victim.write_bytes(victim.read_bytes()[:-10])
    assert f"{IMAGES}/1000005.jpg:" in _error(aircraft_root)


def test_same_size_edits_are_caught_by_mtime_or_by_verify(aircraft_root) -> None:
    check_dataset("fgvc-aircraft", aircraft_root)
    victim = aircraft_root / IMAGES / "1000020.jpg"
    before = victim.stat()
    body = bytearray(victim.read_bytes())
    body[len(body) // 2] ^= 0xFF
    victim.write_bytes(bytes(body))
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert f"{IMAGES}/1000020.jpg: content changed" in _error(aircraft_root)
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))  # hide it from the fast check
    check_dataset("fgvc-aircraft", aircraft_root)
    assert f"{IMAGES}/1000020.jpg: content changed" in _error(aircraft_root, full=True)


def test_a_touched_file_with_the_same_content_passes_and_is_recorded(aircraft_root) -> None:
    check_dataset("fgvc-aircraft", aircraft_root)
    victim = aircraft_root / IMAGES / "1000001.jpg"
    os.utime(victim, ns=(0, victim.stat().st_mtime_ns + 5_000_000))
    check_dataset("fgvc-aircraft", aircraft_root)
    manifest = json.loads((aircraft_root / "cilbench-manifests/fgvc-aircraft.json").read_text())
    assert manifest["files"][f"{IMAGES}/1000001.jpg"]["mtime_ns"] == victim.stat().st_mtime_ns


def test_an_edited_split_file_is_caught_on_every_check(aircraft_root) -> None:
    check_dataset("fgvc-aircraft", aircraft_root)
    split = aircraft_root / "fgvc-aircraft-2013b/data/images_variant_test.txt"
    lines = split.read_text().splitlines(keepends=True)
    stat = split.stat()
    split.write_text("".join(reversed(lines)))  # same size, same mtime: only a hash sees it
    os.utime(split, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "images_variant_test.txt: content changed" in _error(aircraft_root)


def test_different_data_never_reuses_a_cache(aircraft_root) -> None:
    load_dataset("fgvc-aircraft", aircraft_root, image_size=16)
    victim = aircraft_root / IMAGES / "1000002.jpg"
    victim.write_bytes((aircraft_root / IMAGES / "1000003.jpg").read_bytes())
    (aircraft_root / "cilbench-manifests/fgvc-aircraft.json").unlink()  # accept the new data
    load_dataset("fgvc-aircraft", aircraft_root, image_size=16)
    assert len(image_cache.cache_entries(aircraft_root, "fgvc-aircraft")) == 2


def test_the_fast_check_of_cars_reads_the_mat_annotations(tmp_path) -> None:
    write_fake_cars(tmp_path, train_per_class=1, test_per_class=1, num_classes=4,
                    image_size=(30, 20))  # fmt: skip
    check_dataset("stanford-cars", tmp_path)
    (tmp_path / "stanford_cars/cars_test/00002.jpg").unlink()
    with pytest.raises(DatasetUnavailableError, match="stanford_cars/cars_test/00002.jpg"):
        check_dataset("stanford-cars", tmp_path)


def test_every_registered_dataset_can_be_checked(tmp_path, monkeypatch) -> None:
    import harness.data.datasets

    monkeypatch.setattr(harness.data.datasets, "DEBIAN_FASHION_MNIST", tmp_path / "no-package")
    for name in DATASETS:
        try:
            check_dataset(name, tmp_path)
        except DatasetUnavailableError as error:
            assert "--data-root DIR" in str(error)
