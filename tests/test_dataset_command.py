"""``cilbench data``: the status table, --verify and --fetch (offline: fails at once)."""

from __future__ import annotations

import argparse
import urllib.error

import pytest

import harness.data.datasets
from harness.cli.data import add_command
from harness.data.datasets import DatasetUnavailableError
from harness.data.fake_datasets import (
    trust_generated_cifar100,
    write_fake_aircraft,
    write_fake_cifar100,
)
from tests.work_watch import assert_fails_at_once, watch_work


def run(argv: list[str]) -> int:
    """What ``harness.cli.main`` does with the data command: bad data -> exit code 2."""
    parser = argparse.ArgumentParser(prog="cilbench")
    add_command(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except DatasetUnavailableError as error:
        print(f"cilbench: error: {error}")
        return 2


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(harness.data.datasets, "DEBIAN_FASHION_MNIST", tmp_path / "no-package")
    write_fake_cifar100(tmp_path, train_per_class=1, test_per_class=1, num_classes=5)
    trust_generated_cifar100(tmp_path)
    write_fake_aircraft(tmp_path, per_class_per_split=1, num_classes=4, image_size=(40, 30))
    return tmp_path


def _rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in output.splitlines() if line[:1].isalnum()}


def test_the_table_shows_every_dataset_and_its_state(root, capsys) -> None:
    harness.data.datasets.load_dataset("fgvc-aircraft", root, image_size=16)
    assert run(["data", "--data-root", str(root)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert set(harness.data.datasets.DATASETS.names()) <= set(rows)
    assert rows["cifar100"][1:4] == ["ok", "3", "0"]
    assert rows["fgvc-aircraft"][1:4] == ["ok", "16", "1"]  # 4 txt + 12 images; one cache
    assert rows["stanford-cars"][1] == rows["fashion-mnist"][1] == "missing"
    assert rows["sklearn-digits"][1] == "ok"


def test_unverified_and_corrupt_data_show_in_the_table(root, capsys) -> None:
    (root / "fgvc-aircraft-2013b/data/images/1000001.jpg").unlink()
    (root / "cilbench-manifests/cifar100.json").unlink()
    assert run(["data", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["cifar100"][1:3] == ["not", "verified"] and rows["fgvc-aircraft"][1] == "corrupt"
    assert "1 of 16 files missing" in out


def test_verify_rehashes_and_fails_with_exit_2_on_corrupt_data(root, capsys) -> None:
    assert run(["data", "--verify", "fgvc-aircraft", "--data-root", str(root)]) == 0
    image = root / "fgvc-aircraft-2013b/data/images/1000002.jpg"
    image.write_bytes(image.read_bytes()[:-1] + b"x")
    assert run(["data", "--verify", "fgvc-aircraft", "--data-root", str(root)]) == 2
    assert "fgvc-aircraft-2013b/data/images/1000002.jpg" in capsys.readouterr().out


def test_verify_everything_skips_what_is_missing(root, capsys) -> None:
    code = run(["data", "--verify", "--data-root", str(root)])
    out = capsys.readouterr().out
    assert "stanford-cars: missing (skipped)" in out and "fgvc-aircraft: ok" in out
    assert code == 2 and "not the official" in out  # generated CIFAR-100 is not official


def test_fetch_offline_fails_at_once_with_instructions(tmp_path, monkeypatch, capsys) -> None:
    import torchvision.datasets

    class Offline:  # what torchvision does without a network; never touch it here
        def __init__(self, *args, **kwargs):
            raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", Offline)
    monkeypatch.setattr(torchvision.datasets, "FGVCAircraft", Offline)
    for name in ("cifar100", "fgvc-aircraft", "stanford-cars"):
        with watch_work() as work:
            assert run(["data", "--fetch", name, "--data-root", str(tmp_path)]) == 2
        assert_fails_at_once(work)  # no retry wait
        out = capsys.readouterr().out
        assert f"cilbench data --fetch {name} --data-root DIR" in out
    assert "jessicali9530/stanford-cars-dataset" in out and "car_devkit.tgz" in out


def test_the_cilbench_command_line_has_it(root, capsys) -> None:
    from harness.cli import main

    assert main(["data", "--data-root", str(root)]) == 0
    assert "fgvc-aircraft" in capsys.readouterr().out
    assert main(["data", "--fetch", "stanford-cars", "--data-root", str(root)]) == 2
    assert "cannot be downloaded automatically" in capsys.readouterr().err
