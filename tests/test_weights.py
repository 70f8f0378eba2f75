"""Weights resolution: hub cache and local paths, sha256, and clear offline failures.

No test downloads: files are generated here, in a temporary hub directory. Torchvision's real
file names carry the start of the real files' sha256, which generated files cannot match, so
tests that need a *valid* hub file swap in a weights enum whose URL names the generated
file's hash (``fake_torchvision_weights``).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models import MobileNet_V2_Weights, ResNet34_Weights, Weights, WeightsEnum

import harness.models.weights as weights_module
from harness.models.backbones import BACKBONES
from harness.models.weights import (
    CorruptWeightsError,
    MissingWeightsError,
    ResolvedWeights,
    TorchvisionWeights,
    WeightsSpecError,
    fetch_command,
    file_sha256,
    hub_cache_path,
    load_state_dict_file,
    resolve_weights,
    torchvision_weights_for,
)
from tests.work_watch import assert_fails_at_once, watch_work

RESNET34_FILE = "resnet34-b627a593.pth"  # torchvision 0.29's ResNet34_Weights.IMAGENET1K_V1


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torch's hub directory, empty, under tmp_path (via $TORCH_HOME, as users set it)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = Path(torch.hub.get_dir())
    if not hub.is_relative_to(tmp_path):
        pytest.skip("torch.hub's directory is pinned by set_dir; cached weights may be found")
    return hub


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt fails the test: resolving weights must never reach the network."""

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"a download of {url} was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def fake_torchvision_weights(
    monkeypatch: pytest.MonkeyPatch, backbone: str, file: Path, *, builder: str
) -> Path:
    """Put ``file`` into the hub cache under a torchvision-style name carrying its sha256 prefix,
    and make ``backbone``'s ``IMAGENET1K_V1`` point at it; return the hub path."""
    prefix = hashlib.sha256(file.read_bytes()).hexdigest()[:8]
    url = f"https://download.pytorch.org/models/{builder}-{prefix}.pth"
    enum = WeightsEnum(
        f"Fake_{builder}_Weights",
        {"IMAGENET1K_V1": Weights(url=url, transforms=None, meta={})},
    )
    monkeypatch.setattr(torchvision.models, enum.__name__, enum, raising=False)
    table = {
        **weights_module.TORCHVISION_WEIGHTS,
        backbone: TorchvisionWeights(enum.__name__, builder),
    }
    monkeypatch.setattr(weights_module, "TORCHVISION_WEIGHTS", table)
    cached = hub_cache_path(url)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.symlink_to(file)  # the hub checks bytes, not inodes; ResNet-34's are 87 MB
    return cached


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dict of torchvision's MobileNetV2 (with its classifier), as the hub holds it."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2.pth"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), path)
    return path


def test_every_backbone_with_torchvision_weights_is_registered_with_its_builder() -> None:
    for backbone, entry in weights_module.TORCHVISION_WEIGHTS.items():
        assert backbone in BACKBONES
        assert torchvision.models.get_model_weights(entry.builder) is entry.enum


def test_hub_cache_path_follows_torch_home(hub_dir: Path) -> None:
    path = hub_cache_path(ResNet34_Weights.IMAGENET1K_V1.url)
    assert path == hub_dir / "checkpoints" / RESNET34_FILE


def test_missing_hub_file_fails_fast_with_the_path_and_the_fetch_command(hub_dir: Path) -> None:
    with watch_work() as work, pytest.raises(MissingWeightsError) as error:
        resolve_weights("resnet34_cifar", "torchvision:IMAGENET1K_V1")
    assert_fails_at_once(work)  # no network is tried
    message = str(error.value)
    assert str(hub_dir / "checkpoints" / RESNET34_FILE) in message
    command = (
        "python -c \"import torchvision; torchvision.models.resnet34(weights='IMAGENET1K_V1')\""
    )
    assert command in message
    assert "local" in message and "path" in message


def test_default_resolves_to_the_canonical_enum_name(hub_dir: Path) -> None:
    member, builder = torchvision_weights_for("mobilenet_v2", "DEFAULT")
    assert (member, builder) == (MobileNet_V2_Weights.IMAGENET1K_V2, "mobilenet_v2")
    with pytest.raises(
        MissingWeightsError, match=r"mobilenet_v2-7ebf99e0\.pth(.|\n)*'IMAGENET1K_V2'"
    ):
        resolve_weights("mobilenet_v2", "torchvision:DEFAULT")


def test_fetch_command_writes_the_file_resolve_weights_expects(
    hub_dir: Path, mobilenet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the command's Python code with the downloader replaced by a copy of a local file."""
    written: list[Path] = []

    def download(url: str, dst: str, *args: object, **kwargs: object) -> None:
        written.append(Path(dst))
        Path(dst).write_bytes(mobilenet_file.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    argv = shlex.split(fetch_command("mobilenet_v2", "IMAGENET1K_V1"))
    assert argv[:2] == ["python", "-c"]
    exec(argv[2], {})  # noqa: S102 - the command text this module prints, run in-process
    assert written == [hub_dir / "checkpoints" / "mobilenet_v2-b0353104.pth"]
    # The generated bytes do not carry the real file's sha256, which the name says they must.
    with pytest.raises(CorruptWeightsError):
        resolve_weights("mobilenet_v2", "torchvision:IMAGENET1K_V1")


def test_corrupt_hub_file_fails_with_the_digest_and_how_to_fix_it(hub_dir: Path) -> None:
    cached = hub_dir / "checkpoints" / RESNET34_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"an interrupted download")
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    with pytest.raises(CorruptWeightsError, match=f"{cached} is corrupt(.|\n)*{digest}") as error:
        resolve_weights("resnet34", "torchvision:IMAGENET1K_V1")
    assert "Delete it" in str(error.value) and "torchvision.models.resnet34(" in str(error.value)
    assert isinstance(error.value, MissingWeightsError)  # one error class for the CLI to catch


def test_valid_hub_file_resolves_with_its_sha256_and_url(
    hub_dir: Path, mobilenet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = fake_torchvision_weights(
        monkeypatch, "mobilenet_v2", mobilenet_file, builder="mobilenet_v2"
    )
    resolved = resolve_weights("mobilenet_v2", "torchvision:IMAGENET1K_V1")
    digest = hashlib.sha256(mobilenet_file.read_bytes()).hexdigest()
    assert resolved == ResolvedWeights(
        source="torchvision:IMAGENET1K_V1",
        path=cached,
        sha256=digest,
        url=f"https://download.pytorch.org/models/mobilenet_v2-{digest[:8]}.pth",
    )
    record = json.loads(json.dumps(resolved.to_record()))
    assert record == {
        "source": "torchvision:IMAGENET1K_V1",
        "path": cached.name,  # a hub cache is this machine's: the file's name alone
        "sha256": digest,
        "url": resolved.url,
    }


def test_local_path_resolves_with_its_full_sha256(tmp_path: Path) -> None:
    path = tmp_path / "backbone.pt"
    torch.save({"w": torch.ones(3)}, path)
    resolved = resolve_weights("compact_cnn", str(path))
    assert resolved.source == str(path) and resolved.path == path.resolve()
    assert resolved.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert resolved.to_record()["url"] is None
    # Outside the project: the record names the file alone, never this machine's path.
    assert resolved.to_record()["source"] == resolved.to_record()["path"] == "backbone.pt"


def test_a_weights_file_inside_the_project_is_named_relative_to_it() -> None:
    from harness.models.weights import PROJECT_ROOT, portable_path

    assert portable_path(PROJECT_ROOT / "checkpoints" / "x.pt") == "checkpoints/x.pt"
    assert portable_path("checkpoints/x.pt") == "checkpoints/x.pt"
    assert portable_path("/somewhere/else/x.pt") == "x.pt"


def test_missing_local_path_fails_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "weights.pt"
    with pytest.raises(MissingWeightsError, match=f"{missing} does not exist"):
        resolve_weights("resnet34_cifar", str(missing))


def test_unknown_enum_lists_the_valid_names() -> None:
    with pytest.raises(WeightsSpecError, match="IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT"):
        resolve_weights("mobilenet_v2", "torchvision:IMAGENET1K_V9")


def test_backbone_without_torchvision_weights_is_refused() -> None:
    with pytest.raises(
        WeightsSpecError, match="'compact_cnn' has no torchvision weights.*resnet34"
    ):
        resolve_weights("compact_cnn", "torchvision:IMAGENET1K_V1")


def test_sha256_is_computed_once_per_file_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = hashlib.file_digest

    def counting(file: object, digest: str) -> object:
        calls.append(digest)
        return real(file, digest)

    monkeypatch.setattr(weights_module.hashlib, "file_digest", counting)
    path = tmp_path / "weights.pt"
    path.write_bytes(b"first")
    first = file_sha256(path)
    assert file_sha256(path) == first and len(calls) == 1
    path.write_bytes(b"second version")  # another size (and mtime): hashed again
    assert file_sha256(path) == hashlib.sha256(b"second version").hexdigest()
    assert len(calls) == 2


@pytest.mark.parametrize("nesting", [None, "state_dict", "model"])
def test_state_dict_files_bare_or_nested(tmp_path: Path, nesting: str | None) -> None:
    state = {"layer.weight": torch.arange(4.0)}
    path = tmp_path / "checkpoint.pt"
    torch.save(state if nesting is None else {nesting: state, "epoch": 3}, path)
    loaded = load_state_dict_file(path)
    assert list(loaded) == ["layer.weight"] and torch.equal(
        loaded["layer.weight"], state["layer.weight"]
    )


def test_a_file_that_is_not_a_state_dict_fails_clearly(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="garbage.pt is not a loadable torch state-dict file"):
        load_state_dict_file(garbage)
    scalars = tmp_path / "scalars.pt"
    torch.save({"lr": 0.1, "layer.weight": torch.zeros(1)}, scalars)
    with pytest.raises(ValueError, match=r"not a state dict: entries \['lr'\]"):
        load_state_dict_file(scalars)


class _Payload:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.pt"
    torch.save({"payload": _Payload()}, path)
    with pytest.raises(ValueError, match="not a loadable torch state-dict file"):
        load_state_dict_file(path)
