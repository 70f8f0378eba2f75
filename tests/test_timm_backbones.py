"""timm models as backbones: building, weights from a path or the Hugging Face cache (offline),
pruning where Network Slimming applies, and trials end to end on the tiny suites.

timm's ``test_*`` models are tiny (0.1-0.4 M parameters) with random weights: every test runs
in seconds on a CPU.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from harness.api.registry import UnknownNameError
from harness.models.backbones import BACKBONES, create_backbone
from harness.models.incremental_net import IncrementalNet
from harness.models.weights import MissingWeightsError, WeightsSpecError, resolve_weights
from harness.run.trial import run_trial
from harness.training.pruning import NotPrunableError, check_prunable, prune_channels
from tests.contract_trials import tiny_record, tiny_spec

VIT, CNN = "timm:test_vit", "timm:test_resnet"


def _net(backbone: str, *, channels: int = 1, size: int = 8, classes: int = 4) -> IncrementalNet:
    torch.manual_seed(0)
    built = create_backbone(backbone, in_channels=channels, input_size=size)
    net = IncrementalNet(built.module, built.feature_dim)
    net.add_classes(classes)
    return net.eval()


@pytest.mark.parametrize("backbone", [VIT, CNN, "timm:test_efficientnet"])
@pytest.mark.parametrize(("channels", "size"), [(1, 8), (3, 32)])
def test_timm_models_are_backbones(backbone: str, channels: int, size: int) -> None:
    built = create_backbone(backbone, in_channels=channels, input_size=size)
    with torch.no_grad():
        features = built.module.eval()(torch.randn(2, channels, size, size))
    assert features.shape == (2, built.feature_dim)  # pooled, classifier removed
    assert built.feature_dim == timm.create_model(backbone[5:], num_classes=0).num_features
    assert built.weights is None


def test_vit_images_are_padded_to_whole_patches() -> None:
    vit = create_backbone(VIT, in_channels=1, input_size=8).module
    assert vit.patch_embed.grid_size == (1, 1)  # one 16x16 patch holds the 8x8 digit
    assert create_backbone(VIT, in_channels=3, input_size=32).module.patch_embed.grid_size == (2, 2)


def test_unknown_timm_model_suggests_the_near_name() -> None:
    with pytest.raises(UnknownNameError, match='Did you mean "vit_small_patch16_224"'):
        BACKBONES.get("timm:vit_smal_patch16_224")
    assert "timm:test_vit" in BACKBONES and "timm:no_such_model" not in BACKBONES
    with pytest.raises(UnknownNameError, match=r"Or any timm model as timm:<name>"):
        BACKBONES.get("resnet")


def test_images_too_small_for_a_model_fail_when_it_is_built() -> None:
    with pytest.raises(ValueError, match="cannot take 1x8x8 images.*larger images"):
        create_backbone("timm:test_convnext", in_channels=1, input_size=8)


def _timm_classifier_state(name: str, path: Path, *, safetensors: bool) -> dict[str, torch.Tensor]:
    """A whole timm classifier's state dict (1000-class head included), saved as timm ships it."""
    torch.manual_seed(1)
    state = timm.create_model(name).state_dict()
    if safetensors:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return state


@pytest.mark.parametrize("safetensors", [False, True])
def test_weights_from_a_local_file_load_into_every_layer_but_the_head(
    tmp_path: Path, safetensors: bool
) -> None:
    path = tmp_path / ("vit.safetensors" if safetensors else "vit.pth")
    state = _timm_classifier_state("test_vit", path, safetensors=safetensors)
    built = create_backbone(VIT, in_channels=3, input_size=160, weights=str(path))
    loaded = built.module.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith("head.")}
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    assert built.weights is not None and built.weights.path == path.resolve()


def test_local_weights_adapt_to_grey_images_and_another_size(tmp_path: Path) -> None:
    path = tmp_path / "vit.pth"
    state = _timm_classifier_state("test_vit", path, safetensors=False)
    vit = create_backbone(VIT, in_channels=1, input_size=32, weights=str(path)).module
    # timm's loader: RGB kernels summed for grey input, position embeddings resampled to 2x2
    assert torch.allclose(
        vit.patch_embed.proj.weight, state["patch_embed.proj.weight"].sum(1, keepdim=True)
    )
    assert vit.pos_embed.shape[1] == 1 + 4


def test_weights_of_another_model_fail_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "resnet.pth"
    _timm_classifier_state("test_resnet", path, safetensors=False)
    with pytest.raises(RuntimeError, match=r"resnet\.pth"):
        create_backbone(VIT, in_channels=3, input_size=32, weights=str(path))


def _fake_hf_cache(cache: Path, repo: str, source: Path) -> Path:
    """The Hugging Face cache layout the hub library writes: refs/main names a snapshot."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    shutil.copy(source, snapshot / "model.safetensors")
    return snapshot / "model.safetensors"


def test_timm_weights_resolve_from_the_hugging_face_cache_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src.safetensors"
    state = _timm_classifier_state("test_vit", source, safetensors=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = _fake_hf_cache(tmp_path / "hub", "timm/test_vit.r160_in1k", source)
    for spec in ("timm:r160_in1k", "timm:default"):
        resolved = resolve_weights(VIT, spec)
        assert resolved.path == cached and resolved.source == "timm:r160_in1k"
        assert resolved.url == "https://huggingface.co/timm/test_vit.r160_in1k"
    built = create_backbone(VIT, in_channels=3, input_size=160, weights="timm:default")
    assert torch.equal(built.module.state_dict()["blocks.0.attn.qkv.weight"],
                       state["blocks.0.attn.qkv.weight"])  # fmt: skip


def test_missing_timm_weights_fail_fast_with_the_fetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(VIT, "timm:default")
    message = str(error.value)
    assert "timm.create_model('test_vit.r160_in1k', pretrained=True)" in message
    assert str(tmp_path / "empty") in message and "never download" in message


def test_timm_weight_specs_are_checked() -> None:
    with pytest.raises(WeightsSpecError, match="valid: default, r160_in1k"):
        resolve_weights(VIT, "timm:no_such_tag")
    with pytest.raises(WeightsSpecError, match="not a timm model"):
        resolve_weights("resnet34", "timm:default")


def test_prepruning_prunes_a_timm_cnn_with_batchnorm() -> None:
    net = _net(CNN, channels=3, size=32)
    check_prunable(net, framework="prepruning", backbone=CNN)
    summary = prune_channels(net, ratio=0.4, example_inputs=torch.zeros(1, 3, 32, 32))
    assert summary.gflops_after < summary.gflops_before
    assert summary.conv_channels_after < summary.conv_channels_before
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.parametrize("framework", ["prepruning", "postpruning"])
def test_pruning_a_backbone_without_batchnorm_is_refused_by_name(framework: str) -> None:
    spec = tiny_spec("finetune", framework, backbone=VIT)
    record = run_trial(spec)
    assert record["status"] == "failed"
    message = record["error"]["message"]
    assert framework in message and VIT in message and "BatchNorm" in message
    with pytest.raises(NotPrunableError):
        check_prunable(_net(VIT), framework=framework, backbone=VIT)


@pytest.mark.parametrize(
    ("backbone", "framework"), [(VIT, "none"), (CNN, "none"), (CNN, "prepruning")]
)
def test_timm_backbones_run_trials_with_counted_costs(backbone: str, framework: str) -> None:
    record = tiny_record("lwf", framework, backbone=backbone)
    assert record["status"] == "ok", record["error"]
    cost = record["inference_cost"]
    assert cost["uncounted_ops"] == []
    assert cost["counter_disagreement_pct"] < 1.0
    assert record["method"]["backbone"] == backbone
    if framework == "none":  # the served model is the backbone plus a 6-class head
        net = _net(backbone, classes=6)
        expected = 2 * timm_vit_or_cnn_macs(net)
        assert cost["gflops_per_image"] * 1e9 == pytest.approx(expected, rel=0.01)


def timm_vit_or_cnn_macs(net: IncrementalNet) -> int:
    """MACs of ``net`` on one 1x8x8 image by hand: ViT formula, or every conv and linear."""
    from tests.test_attention_flops import vit_macs

    backbone = net.backbone
    head = net.head.fc.in_features * net.head.fc.out_features
    if hasattr(backbone, "blocks"):
        return vit_macs(backbone, image_size=16) + head
    return _conv_macs(backbone, torch.zeros(1, 1, 8, 8)) + head


def _conv_macs(model: torch.nn.Module, image: torch.Tensor) -> int:
    """Each conv's output elements x (in / groups) x kernel area, from shapes seen by hooks."""
    total = 0

    def hook(module: torch.nn.Module, _: object, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            total += output.numel() * per_output
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(image)
    for handle in handles:
        handle.remove()
    return total
