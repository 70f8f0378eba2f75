"""Contract tests over every registered backbone, and weight loading (local, torchvision).

Torchvision weights are generated state dicts of the right shapes, put in a temporary hub
directory (see tests/test_weights.py): nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from harness.api.registry import UnknownNameError
from harness.models.backbones import BACKBONES, Backbone, cifar_stem_weight, create_backbone
from harness.models.weights import MissingWeightsError
from tests.test_weights import fake_torchvision_weights, hub_dir, no_downloads

__all__ = ["hub_dir", "no_downloads"]  # fixtures shared with test_weights

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# (in_channels, input_size) each backbone is meant for; a new backbone must say its own.
INTENDED_INPUTS: dict[str, list[tuple[int, int]]] = {
    "compact_cnn": [(1, 8), (1, 28)],
    "compact_cnn_small": [(1, 8), (1, 28)],
    "resnet34_cifar": [(3, 32)],
    "resnet34": [(3, 224)],
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
        create_backbone("resnet35", in_channels=3, input_size=32)
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


def test_a_safetensors_checkpoint_loads_like_a_torch_one(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = create_backbone("compact_cnn", in_channels=1, input_size=8)
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in source.module.state_dict().items()}, str(path))
    torch.manual_seed(2)
    loaded = create_backbone("compact_cnn", in_channels=1, input_size=8, weights=str(path))
    assert torch.equal(_features(source, 1, 8), _features(loaded, 1, 8))
    path.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="is not a loadable safetensors file"):
        create_backbone("compact_cnn", in_channels=1, input_size=8, weights=str(path))


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
    with pytest.raises(MissingWeightsError, match=str(missing)):
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


@pytest.fixture(scope="module")
def imagenet_resnet34(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """A whole ImageNet ResNet-34 state dict (7x7 stem, 1000-class fc), as torchvision's file
    holds one, with every float tensor random so that a layer left at its init is caught."""
    generator = torch.Generator().manual_seed(3)
    state = {
        key: torch.randn(value.shape, generator=generator) if value.is_floating_point() else value
        for key, value in torchvision.models.resnet34(weights=None).state_dict().items()
    }
    path = tmp_path_factory.mktemp("imagenet") / "resnet34-imagenet.pth"
    torch.save(state, path)
    return state, path


def _assert_loaded_except(module: nn.Module, source: dict, *, adapted: str) -> None:
    loaded = module.state_dict()
    assert set(loaded) == {k for k in source if not k.startswith("fc.")}
    assert all(torch.equal(loaded[k], source[k]) for k in loaded if k != adapted)


def test_torchvision_weights_load_from_the_hub_into_resnet34_cifar(
    imagenet_resnet34: tuple[dict, Path], hub_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, path = imagenet_resnet34
    cached = fake_torchvision_weights(monkeypatch, "resnet34_cifar", path, builder="resnet34")
    backbone = create_backbone(
        "resnet34_cifar", in_channels=3, input_size=32, weights="torchvision:IMAGENET1K_V1"
    )
    _assert_loaded_except(backbone.module, state, adapted="conv1.weight")
    stem = backbone.module.conv1.weight
    assert stem.shape == (64, 3, 3, 3)  # the CIFAR stem, initialised from the 7x7 one
    assert torch.equal(stem, cifar_stem_weight(state["conv1.weight"]))
    assert backbone.weights is not None
    assert (backbone.weights.source, backbone.weights.path) == ("torchvision:IMAGENET1K_V1", cached)
    assert backbone.weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_cifar_stem_keeps_each_filters_response_to_a_constant_image() -> None:
    kernel = torch.randn(64, 3, 7, 7, generator=torch.Generator().manual_seed(5))
    stem = cifar_stem_weight(kernel)
    assert stem.shape == (64, 3, 3, 3)
    assert torch.allclose(stem.sum(dim=(1, 2, 3)), kernel.sum(dim=(1, 2, 3)), atol=1e-4)
    image = torch.full((1, 3, 16, 16), 0.5)
    centre_7x7 = torch.conv2d(image, kernel, padding=3)[..., 8, 8]
    centre_3x3 = torch.conv2d(image, stem, padding=1)[..., 8, 8]
    assert torch.allclose(centre_3x3, centre_7x7, atol=1e-4)
    # A flat kernel stays flat: each 3x3 tap covers (7/3)^2 = 49/9 of the 7x7 taps.
    flat = cifar_stem_weight(torch.ones(1, 1, 7, 7))
    assert torch.allclose(flat, torch.full((1, 1, 3, 3), 49 / 9))


def test_imagenet_weights_from_a_path_fit_grey_resnet34_cifar(
    imagenet_resnet34: tuple[dict, Path],
) -> None:
    state, path = imagenet_resnet34
    backbone = create_backbone("resnet34_cifar", in_channels=1, input_size=32, weights=str(path))
    _assert_loaded_except(backbone.module, state, adapted="conv1.weight")
    expected = cifar_stem_weight(state["conv1.weight"]).sum(dim=1, keepdim=True)
    assert torch.allclose(backbone.module.conv1.weight, expected)
    assert backbone.weights is not None and backbone.weights.source == str(path)


def test_imagenet_weights_load_whole_into_resnet34(imagenet_resnet34: tuple[dict, Path]) -> None:
    state, path = imagenet_resnet34
    backbone = create_backbone("resnet34", in_channels=3, input_size=224, weights=str(path))
    module = backbone.module
    assert module.conv1.kernel_size == (7, 7) and isinstance(module.maxpool, nn.MaxPool2d)
    _assert_loaded_except(module, state, adapted="")
    assert backbone.feature_dim == 512


def test_missing_torchvision_weights_fail_fast_naming_file_and_command(hub_dir: Path) -> None:
    for name in ("resnet34_cifar", "resnet34", "mobilenet_v2"):
        with pytest.raises(MissingWeightsError, match=r"(?s)checkpoints/.*torchvision\.models\."):
            create_backbone(name, in_channels=3, input_size=32, weights="torchvision:IMAGENET1K_V1")


def test_torchvision_weights_adapt_mobilenet_input_conv(
    tmp_path: Path, hub_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(4)
    imagenet = torchvision.models.mobilenet_v2().state_dict()
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(imagenet, path)
    fake_torchvision_weights(monkeypatch, "mobilenet_v2", path, builder="mobilenet_v2")
    backbone = create_backbone(
        "mobilenet_v2", in_channels=1, input_size=32, weights="torchvision:IMAGENET1K_V1"
    )
    module = backbone.module
    rgb_kernels = imagenet["features.0.0.weight"]
    assert torch.allclose(module.features[0][0].weight, rgb_kernels.sum(dim=1, keepdim=True))
    assert torch.equal(module.features[18][0].weight, imagenet["features.18.0.weight"])
    assert backbone.weights is not None and backbone.weights.url is not None


def test_random_init_records_no_weights() -> None:
    assert create_backbone("compact_cnn", in_channels=1, input_size=8).weights is None
