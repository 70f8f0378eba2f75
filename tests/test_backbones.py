"""Contract tests over every registered backbone, and weight loading (local, torchvision)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision
from torch import nn

from harness.backbones import BACKBONES, Backbone, create_backbone
from harness.registry import UnknownNameError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# (in_channels, input_size) each backbone is meant for; a new backbone must say its own.
INTENDED_INPUTS: dict[str, list[tuple[int, int]]] = {
    "compact_cnn": [(1, 8), (1, 28)],
    "compact_cnn_small": [(1, 8), (1, 28)],
    "resnet34_cifar": [(3, 32)],
    "mobilenet_v2": [(3, 32)],
}
BACKBONE_INPUTS = [
    (name, channels, size)
    for name in BACKBONES.names()
    for channels, size in INTENDED_INPUTS.get(name, [])
]


def _features(backbone: Backbone, channels: int, size: int, *, batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    images = torch.randn(batch, channels, size, size)
    backbone.module.eval()
    with torch.no_grad():
        return backbone.module(images)


def test_every_registered_backbone_declares_its_intended_inputs() -> None:
    assert sorted(INTENDED_INPUTS) == BACKBONES.names()


@pytest.mark.parametrize(("name", "channels", "size"), BACKBONE_INPUTS)
def test_backbone_returns_flat_features(name: str, channels: int, size: int) -> None:
    backbone = create_backbone(name, in_channels=channels, input_size=size)
    assert _features(backbone, channels, size).shape == (2, backbone.feature_dim)


def test_feature_dims_of_the_paper_backbones() -> None:
    assert create_backbone("resnet34_cifar", in_channels=3, input_size=32).feature_dim == 512
    assert create_backbone("mobilenet_v2", in_channels=3, input_size=32).feature_dim == 1280


def test_mobilenet_v2_takes_grey_images() -> None:
    backbone = create_backbone("mobilenet_v2", in_channels=1, input_size=32)
    assert _features(backbone, 1, 32).shape == (2, 1280)


def test_resnet34_cifar_has_the_cifar_stem() -> None:
    module = create_backbone("resnet34_cifar", in_channels=3, input_size=32).module
    assert isinstance(module, torchvision.models.ResNet)
    assert module.conv1.kernel_size == (3, 3) and module.conv1.stride == (1, 1)
    assert isinstance(module.maxpool, nn.Identity) and isinstance(module.fc, nn.Identity)


def test_compact_cnns_have_batchnorm_after_every_conv() -> None:
    for name in ("compact_cnn", "compact_cnn_small"):
        layers = list(create_backbone(name, in_channels=1, input_size=8).module.modules())
        convs = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
        assert len(convs) == 4
        assert all(isinstance(layers[i + 1], nn.BatchNorm2d) for i in convs)


def test_compact_cnn_small_is_the_quarter_width_student() -> None:
    teacher = create_backbone("compact_cnn", in_channels=1, input_size=28)
    student = create_backbone("compact_cnn_small", in_channels=1, input_size=28)
    assert (teacher.feature_dim, student.feature_dim) == (64, 16)
    ratio = _count(student.module) / _count(teacher.module)
    assert 0.05 < ratio < 0.1


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_unknown_backbone_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="resnet34_cifar") as error:
        create_backbone("resnet34", in_channels=3, input_size=32)
    assert all(name in str(error.value) for name in BACKBONES.names())


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize(
    ("name", "channels", "size"),
    [
        ("compact_cnn", 1, 8),
        ("resnet34_cifar", 3, 32),
        ("mobilenet_v2", 3, 32),
    ],
)
def test_local_checkpoint_round_trips(
    tmp_path: Path, name: str, channels: int, size: int, wrapped: bool
) -> None:
    torch.manual_seed(1)
    source = create_backbone(name, in_channels=channels, input_size=size)
    state = source.module.state_dict()
    if wrapped:  # a whole-classifier checkpoint: head keys must be ignored
        state = {
            "state_dict": {
                **state,
                "fc.weight": torch.zeros(10, 5),
                "classifier.1.bias": torch.zeros(10),
            }
        }
    path = tmp_path / "backbone.pt"
    torch.save(state, path)
    torch.manual_seed(2)  # a different random init, which loading must overwrite
    loaded = create_backbone(name, in_channels=channels, input_size=size, weights=str(path))
    assert torch.equal(_features(source, channels, size), _features(loaded, channels, size))


def test_checkpoint_of_another_architecture_fails_with_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "partial.pt"
    state = create_backbone("compact_cnn", in_channels=1, input_size=8).module.state_dict()
    torch.save({"0.0.weight": state["0.0.weight"], "extra.weight": torch.zeros(1)}, path)
    with pytest.raises(
        RuntimeError,
        match=r"missing keys \[0\.1\.weight.*unexpected keys "
        r"\[extra\.weight\]",
    ):
        create_backbone("compact_cnn", in_channels=1, input_size=8, weights=str(path))


def test_checkpoint_with_other_shapes_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "teacher.pt"
    torch.save(
        create_backbone("compact_cnn", in_channels=1, input_size=8).module.state_dict(), path
    )
    with pytest.raises(RuntimeError, match="teacher.pt does not fit backbone 'compact_cnn_small'"):
        create_backbone("compact_cnn_small", in_channels=1, input_size=8, weights=str(path))


def test_missing_checkpoint_fails_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "weights.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        create_backbone("compact_cnn", in_channels=1, input_size=8, weights=str(missing))


def test_unknown_torchvision_enum_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        create_backbone(
            "resnet34_cifar", in_channels=3, input_size=32, weights="torchvision:IMAGENET1K_V9"
        )


def test_compact_cnn_rejects_torchvision_weights() -> None:
    with pytest.raises(ValueError, match="no torchvision weights"):
        create_backbone(
            "compact_cnn", in_channels=1, input_size=8, weights="torchvision:IMAGENET1K_V1"
        )


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torch's hub cache in tmp_path, so no weights downloaded earlier can be found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    if not Path(torch.hub.get_dir()).is_relative_to(tmp_path):
        pytest.skip("torch.hub's directory is pinned by set_dir; cached weights may be found")
    return tmp_path


@pytest.mark.parametrize("name", ["resnet34_cifar", "mobilenet_v2"])
def test_torchvision_weights_offline_fail_fast_and_clearly(
    name: str, empty_hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offline, urllib fails at name resolution (0.1-0.4 s here); the downloader is replaced so
    # that a machine with network access neither downloads 90 MB nor hangs on a dropped link.
    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    start = time.perf_counter()
    with pytest.raises(
        RuntimeError, match="could not download torchvision weights.*pass the local checkpoint path"
    ):
        create_backbone(name, in_channels=3, input_size=32, weights="torchvision:IMAGENET1K_V1")
    assert time.perf_counter() - start < 10


def test_torchvision_weights_load_into_resnet34_cifar(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(3)
    imagenet = torchvision.models.resnet34().state_dict()  # stands in for the download
    monkeypatch.setattr(
        torchvision.models.WeightsEnum, "get_state_dict", lambda self, *args, **kwargs: imagenet
    )
    module = create_backbone(
        "resnet34_cifar", in_channels=3, input_size=32, weights="torchvision:IMAGENET1K_V1"
    ).module
    assert torch.equal(module.layer4[2].conv2.weight, imagenet["layer4.2.conv2.weight"])
    assert module.conv1.weight.shape == (64, 3, 3, 3)  # the CIFAR stem, not the 7x7 one


def test_torchvision_weights_adapt_mobilenet_input_conv(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(4)
    imagenet = torchvision.models.mobilenet_v2().state_dict()
    monkeypatch.setattr(
        torchvision.models.WeightsEnum, "get_state_dict", lambda self, *args, **kwargs: imagenet
    )
    module = create_backbone(
        "mobilenet_v2", in_channels=1, input_size=32, weights="torchvision:IMAGENET1K_V1"
    ).module
    rgb_kernels = imagenet["features.0.0.weight"]
    assert torch.allclose(module.features[0][0].weight, rgb_kernels.sum(dim=1, keepdim=True))
    assert torch.equal(module.features[18][0].weight, imagenet["features.18.0.weight"])
