"""FGVC-Aircraft and Stanford Cars from generated files in their real formats: loading,
labels, the banner crop and the decode-once cache."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from harness.data.datasets import DatasetUnavailableError, image_cache, load_dataset
from harness.data.fake_datasets import write_fake_aircraft, write_fake_cars

AIRCRAFT = "fgvc-aircraft-2013b/data"


@pytest.fixture
def aircraft_root(tmp_path):
    write_fake_aircraft(tmp_path, per_class_per_split=2, num_classes=5, image_size=(90, 60))
    return tmp_path


@pytest.fixture
def cars_root(tmp_path):
    write_fake_cars(tmp_path, train_per_class=2, test_per_class=1, num_classes=6,
                    image_size=(70, 50), greyscale_every=4)  # fmt: skip
    return tmp_path


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = image_cache.decode_image
    monkeypatch.setattr(image_cache, "decode_image", lambda *a: calls.append(a) or real(*a))
    return calls


def test_aircraft_keeps_its_official_splits(aircraft_root) -> None:
    data = load_dataset("fgvc-aircraft", aircraft_root, image_size=24)
    for x, y in ((data.train_x, data.train_y), (data.val_x, data.val_y),
                 (data.test_x, data.test_y)):  # fmt: skip
        assert x.shape == (10, 3, 24, 24) and x.dtype == np.uint8 and y.dtype == np.int64
        assert sorted(y.tolist()) == sorted(list(range(5)) * 2)
    variants = (aircraft_root / AIRCRAFT / "variants.txt").read_text().splitlines()
    assert data.class_names == tuple(variants) and " " in variants[0]
    first = (aircraft_root / AIRCRAFT / "images_variant_val.txt").read_text().splitlines()[0]
    assert data.val_y[0] == variants.index(first.split(" ", 1)[1])


def test_labels_agree_with_torchvision(aircraft_root, cars_root) -> None:
    from torchvision.datasets import FGVCAircraft, StanfordCars

    aircraft = load_dataset("fgvc-aircraft", aircraft_root, image_size=16)
    theirs = FGVCAircraft(str(aircraft_root), split="test")
    assert theirs._labels == aircraft.test_y.tolist() and theirs.classes == list(
        aircraft.class_names
    )
    cars = load_dataset("stanford-cars", cars_root, image_size=16)
    for split, labels in (("train", cars.train_y), ("test", cars.test_y)):
        theirs = StanfordCars(str(cars_root), split=split)
        assert [label for _, label in theirs._samples] == labels.tolist()
        assert theirs.classes == list(cars.class_names)


def test_the_aircraft_copyright_banner_is_cropped(aircraft_root) -> None:
    data = load_dataset("fgvc-aircraft", aircraft_root, image_size=32)
    bottom_rows = data.train_x[:, :, -2:, :].astype(float)
    assert bottom_rows.max() < 240  # the white banner (255) would dominate the last rows
    image = aircraft_root / AIRCRAFT / "images" / "1000000.jpg"
    uncropped = image_cache.decode_image(image, image_cache.DecodeSpec(32))
    assert uncropped[:, -1, :].mean() > 250


def test_cars_are_zero_based_and_rgb(cars_root) -> None:
    data = load_dataset("stanford-cars", cars_root, image_size=20)
    assert data.train_x.shape == (12, 3, 20, 20) and data.test_x.shape == (6, 3, 20, 20)
    assert data.val_x is None and data.train_x.dtype == np.uint8
    assert sorted(data.train_y.tolist()) == sorted(list(range(6)) * 2)
    assert data.class_names[0] == "Maker0 Model 000 2000" and len(data.class_names) == 6
    greyscale = data.train_x[3]  # every 4th image was written as a greyscale JPEG
    assert np.array_equal(greyscale[0], greyscale[1]) and np.array_equal(greyscale[0], greyscale[2])


def test_folder_datasets_need_an_image_size(aircraft_root) -> None:
    with pytest.raises(DatasetUnavailableError, match="image_size=224"):
        load_dataset("fgvc-aircraft", aircraft_root)


def test_images_are_decoded_once_and_cached_per_resolution(aircraft_root, count_decodes) -> None:
    first = load_dataset("fgvc-aircraft", aircraft_root, image_size=24)
    assert len(count_decodes) == 30
    caches = image_cache.cache_entries(aircraft_root, "fgvc-aircraft")
    assert len(caches) == 1 and caches[0].name.startswith("fgvc-aircraft-24px-")
    again = load_dataset("fgvc-aircraft", aircraft_root, image_size=24)
    assert len(count_decodes) == 30  # nothing decoded the second time
    assert isinstance(again.train_x, np.memmap) and not again.train_x.flags.writeable
    assert np.array_equal(first.test_x, again.test_x)
    load_dataset("fgvc-aircraft", aircraft_root, image_size=16)
    assert len(count_decodes) == 60
    assert len(image_cache.cache_entries(aircraft_root, "fgvc-aircraft")) == 2


def test_loads_that_start_together_decode_once(aircraft_root, count_decodes) -> None:
    with ThreadPoolExecutor(3) as pool:  # flock also excludes other open files of one process
        results = list(
            pool.map(
                lambda _: load_dataset("fgvc-aircraft", aircraft_root, image_size=24), range(3)
            )
        )
    assert len(count_decodes) == 30
    assert all(np.array_equal(results[0].train_x, r.train_x) for r in results)


def test_parallel_decoding_gives_the_same_pixels(cars_root, monkeypatch) -> None:
    serial = load_dataset("stanford-cars", cars_root, image_size=20)
    monkeypatch.setattr(image_cache, "PARALLEL_MIN_IMAGES", 0)
    monkeypatch.setenv("CILBENCH_DECODE_WORKERS", "2")
    monkeypatch.setattr(image_cache, "RECIPE_VERSION", 99)  # a fresh cache folder
    parallel = load_dataset("stanford-cars", cars_root, image_size=20)
    assert np.array_equal(serial.train_x, parallel.train_x)
    assert np.array_equal(serial.test_x, parallel.test_x)


def test_an_undecodable_image_is_named_and_no_cache_is_left(aircraft_root) -> None:
    broken = aircraft_root / AIRCRAFT / "images" / "1000003.jpg"
    broken.write_bytes(broken.read_bytes()[:200])  # before the manifest: it records this
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("fgvc-aircraft", aircraft_root, image_size=24)
    assert "1 image(s) could not be decoded" in str(info.value) and str(broken) in str(info.value)
    assert [p for p in (aircraft_root / "cilbench-cache").iterdir() if p.is_dir()] == []
