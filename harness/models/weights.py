"""Where a backbone's pre-trained weights come from: resolved offline, hashed, never downloaded.

A weights spec is one string, so suites and command lines can carry it:
``"torchvision:<ENUM>"`` names torchvision's pre-trained weights for the backbone (e.g.
``torchvision:IMAGENET1K_V1``), read from torch's hub cache; ``"timm:<tag>"`` names timm's
weights of a ``timm:<model>`` backbone (``timm:default`` for timm's default tag), read from the
Hugging Face cache; anything else is the path of a local state-dict file. Resolving a spec
finds the file and its sha256 (for the trial record) and touches no network: trials run on
machines without internet (the paper's teacher, ResNet-34, and student, MobileNetV2, start
from ImageNet weights), and a downloader inside a trial would hang or retry instead of failing.
A missing file fails in milliseconds with the one command that fetches it on a connected
machine.

Hub-cache files are checked as ``torch.hub`` checks a download: torchvision names each file
``<name>-<first 8+ hex of its sha256>.pth`` (e.g. ``resnet34-b627a593.pth``), so a truncated
or altered file is caught before it is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch

from harness.models.timm_backbones import TIMM_PREFIX, timm_model_name

if TYPE_CHECKING:  # annotations only: torchvision is imported where its weights are resolved
    from torchvision.models import WeightsEnum

TORCHVISION_PREFIX = "torchvision:"
# timm's files on the Hugging Face hub, in the order timm itself tries them.
HF_WEIGHT_FILES = ["model.safetensors", "pytorch_model.bin"]
# Keys under which training scripts commonly nest the model's state dict in a checkpoint.
NESTED_STATE_KEYS = ("state_dict", "model")
# torchvision's file-name convention, the one torch.hub.load_state_dict_from_url checks.
HUB_HASH_PATTERN = re.compile(r"-([0-9a-f]{8,})\.[^.-]+$")


@dataclass(frozen=True)
class TorchvisionWeights:
    """The torchvision weights enum of a backbone and the builder that downloads them.

    Named, not imported: importing torchvision costs a trial process over a second (it pulls
    in torch._dynamo), which runs on suites that never touch its models.
    """

    enum_name: str  # a class of torchvision.models, e.g. ResNet34_Weights
    builder: str  # a function of torchvision.models, for the fetch command

    @property
    def enum(self) -> type[WeightsEnum]:
        import torchvision.models

        return getattr(torchvision.models, self.enum_name)


# Backbones (as registered in harness.models.backbones) whose architecture matches a torchvision
# model closely enough to start from its weights; a new such backbone adds a row.
TORCHVISION_WEIGHTS: dict[str, TorchvisionWeights] = {
    "resnet34": TorchvisionWeights("ResNet34_Weights", "resnet34"),
    "resnet34_cifar": TorchvisionWeights("ResNet34_Weights", "resnet34"),
    "mobilenet_v2": TorchvisionWeights("MobileNet_V2_Weights", "mobilenet_v2"),
}


class WeightsSpecError(ValueError):
    """A weights spec that names no weights for the backbone; the message lists valid ones."""


class MissingWeightsError(RuntimeError):
    """The weights file a spec names is not on this machine; the message says how to get it."""


class CorruptWeightsError(MissingWeightsError):
    """A hub-cache file whose bytes do not match the sha256 in its name.

    A subclass of ``MissingWeightsError`` because the fix is the same: the right file is not
    there, so fetch it again (or pass a local path).
    """


@dataclass(frozen=True)
class ResolvedWeights:
    """The weights file a spec resolved to, with what the trial record needs to name it."""

    source: str  # "torchvision:<ENUM>" (canonical name, so DEFAULT is pinned) or the path given
    path: Path  # the file actually loaded
    sha256: str  # full hex digest of the file's bytes
    url: str | None = None  # where torchvision downloads it from; None for local files

    def to_record(self) -> dict[str, str | None]:
        """What the record says: no machine's absolute path (records are shared), but the
        file relative to the project, or its name alone where it lies outside (a hub cache);
        the sha256 names the bytes either way."""
        local = not self.source.startswith((TORCHVISION_PREFIX, TIMM_PREFIX))
        return {
            "source": portable_path(self.source) if local else self.source,
            "path": portable_path(self.path),
            "sha256": self.sha256,
            "url": self.url,
        }


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def portable_path(path: str | Path) -> str:
    """``path`` relative to the project when inside it, else its file name alone."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return path.name


def resolve_weights(backbone: str, spec: str) -> ResolvedWeights:
    """Find the file of weights ``spec`` for ``backbone`` on this machine, without downloading."""
    if spec.startswith(TORCHVISION_PREFIX):
        return _resolve_torchvision(backbone, spec.removeprefix(TORCHVISION_PREFIX))
    if spec.startswith(TIMM_PREFIX):
        return _resolve_timm_hub(backbone, spec.removeprefix(TIMM_PREFIX))
    return _resolve_local(spec)


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache timm downloads into, read at call time (the hub library reads
    it at import): ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def _resolve_timm_hub(backbone: str, tag: str) -> ResolvedWeights:
    """timm's pre-trained weights ``timm:<tag>`` (``timm:default`` for timm's default tag) of
    a ``timm:<model>`` backbone, from the Hugging Face cache."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    if not backbone.startswith(TIMM_PREFIX):
        raise WeightsSpecError(
            f"'{TIMM_PREFIX}{tag}' names timm weights, but backbone {backbone!r} is not a timm "
            f"model ({TIMM_PREFIX}<model>); pass a local checkpoint path instead"
        )
    model = timm_model_name(backbone)
    try:
        cfg = timm.models.get_pretrained_cfg(model if tag == "default" else f"{model}.{tag}")
    except RuntimeError:  # timm's "Invalid pretrained tag"
        cfg = None
    if cfg is None or not cfg.hf_hub_id:
        tags = [name.partition(".")[2] for name in timm.list_pretrained(f"{model}.*")]
        raise WeightsSpecError(
            f"timm has no Hugging Face weights {tag!r} for {model!r}; valid: "
            f"{', '.join(['default', *tags]) if tags else '(none: pass a local path)'} "
            f"(as '{TIMM_PREFIX}<tag>')"
        )
    repo = cfg.hf_hub_id.partition("@")[0]
    filenames = [cfg.hf_hub_filename] if cfg.hf_hub_filename else HF_WEIGHT_FILES
    cache = hf_hub_cache()
    for filename in filenames:
        found = try_to_load_from_cache(repo, filename, cache_dir=cache)
        if isinstance(found, str):
            path = Path(found)
            return ResolvedWeights(
                source=f"{TIMM_PREFIX}{cfg.tag}",
                path=path,
                sha256=file_sha256(path),
                url=f"https://huggingface.co/{repo}",
            )
    command = f"python -c \"import timm; timm.create_model('{model}.{cfg.tag}', pretrained=True)\""
    raise MissingWeightsError(
        f"timm weights {model}.{cfg.tag} (Hugging Face repo {repo}, file "
        f"{' or '.join(filenames)}) are not in the Hugging Face cache {cache}. Trials never "
        f"download. On a machine with internet access run\n    {command}\nand copy "
        f"{cache / ('models--' + repo.replace('/', '--'))} here (the cache is $HF_HUB_CACHE, "
        f"else $HF_HOME/hub); or pass the path of a local state-dict file as the weights."
    )


def torchvision_weights_for(backbone: str, enum_name: str) -> tuple[WeightsEnum, str]:
    """The torchvision enum member ``enum_name`` of ``backbone``, and its model builder's name."""
    entry = TORCHVISION_WEIGHTS.get(backbone)
    if entry is None:
        with_weights = ", ".join(sorted(TORCHVISION_WEIGHTS))
        raise WeightsSpecError(
            f"backbone {backbone!r} has no torchvision weights; pass a local checkpoint path "
            f"instead (backbones with torchvision weights: {with_weights})"
        )
    valid = [member.name for member in entry.enum] + ["DEFAULT"]
    if enum_name not in valid:
        raise WeightsSpecError(
            f"unknown {entry.enum.__name__} {enum_name!r} for backbone {backbone!r}; "
            f"valid: {', '.join(valid)} (as '{TORCHVISION_PREFIX}<name>')"
        )
    return entry.enum[enum_name], entry.builder


def hub_cache_path(url: str) -> Path:
    """Where torch.hub keeps the file of ``url``: ``torch.hub.get_dir()/checkpoints/<name>``.

    ``get_dir`` follows ``torch.hub.set_dir`` and ``$TORCH_HOME``, read at call time.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def fetch_command(builder: str, enum_name: str) -> str:
    """The one command that puts torchvision's weights in the hub cache on a connected machine.

    torchvision's builders accept the enum name as a string and download through
    ``torch.hub.load_state_dict_from_url`` into ``torch.hub.get_dir()/checkpoints``.
    """
    return f"python -c \"import torchvision; torchvision.models.{builder}(weights='{enum_name}')\""


def _resolve_torchvision(backbone: str, enum_name: str) -> ResolvedWeights:
    weights, builder = torchvision_weights_for(backbone, enum_name)
    source = f"{TORCHVISION_PREFIX}{weights.name}"
    path = hub_cache_path(weights.url)
    command = fetch_command(builder, weights.name)
    if not path.is_file():
        raise MissingWeightsError(
            f"torchvision weights {weights!r} for backbone {backbone!r} are not in torch's hub "
            f"cache: expected {path}. Trials never download. On a machine with internet access "
            f"run\n    {command}\n(it writes {path.name} to torch.hub.get_dir()/checkpoints, "
            f"i.e. $TORCH_HOME/hub/checkpoints) and copy that file here to {path}; or pass the "
            f"path of a local copy as the weights instead of {source!r}."
        )
    digest = file_sha256(path)
    _check_hub_hash(path, digest, command=command)
    return ResolvedWeights(source=source, path=path, sha256=digest, url=weights.url)


def _check_hub_hash(path: Path, digest: str, *, command: str) -> None:
    match = HUB_HASH_PATTERN.search(path.name)
    if match is None:  # torchvision's ResNet-34 and MobileNetV2 files all carry one
        return
    if not digest.startswith(match.group(1)):
        raise CorruptWeightsError(
            f"{path} is corrupt: its sha256 is {digest}, but its name says it starts with "
            f"{match.group(1)} (an interrupted or altered download). Delete it and fetch it "
            f"again on a machine with internet access:\n    {command}\nor pass the path of "
            "a good local copy as the weights."
        )


def _resolve_local(spec: str) -> ResolvedWeights:
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise MissingWeightsError(
            f"weights file {path} does not exist. Pass the path of an existing state-dict file "
            f"(.pt/.pth/.safetensors), '{TORCHVISION_PREFIX}<ENUM>' "
            f"to read torchvision's weights from torch's hub cache, or '{TIMM_PREFIX}<tag>' "
            "for a timm backbone's weights from the Hugging Face cache."
        )
    return ResolvedWeights(source=spec, path=path, sha256=file_sha256(path))


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per (path, size, mtime) in this process.

    Every model a trial builds (teacher, student, retrained copies) resolves its weights
    again; hashing ResNet-34's 87 MB each time would cost about a third of a second.
    """
    stat = path.stat()
    return _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as file:  # size and mtime are part of the cache key only
        return hashlib.file_digest(file, "sha256").hexdigest()


def load_state_dict_file(path: Path) -> Mapping[str, torch.Tensor]:
    """The state dict in ``path`` (.safetensors, or torch's format): bare, or nested under
    ``"state_dict"`` or ``"model"``.

    ``weights_only=True`` unpickles tensors and containers only, so a checkpoint from
    elsewhere cannot run code on load (safetensors holds nothing else); ``map_location="cpu"``
    lets GPU-saved files load here.
    """
    safetensors = Path(path).suffix == ".safetensors"
    try:
        if safetensors:
            from safetensors.torch import load_file

            loaded: Any = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and weights_only errors share no base class
        kind = "safetensors" if safetensors else "torch state-dict"
        raise ValueError(
            f"{path} is not a loadable {kind} file ({type(error).__name__}: {error})"
        ) from error
    if isinstance(loaded, Mapping):
        nested = next(
            (loaded[k] for k in NESTED_STATE_KEYS if isinstance(loaded.get(k), Mapping)), None
        )
        loaded = nested if nested is not None else loaded
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    others = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if others:
        raise ValueError(
            f"{path} is not a state dict: entries {others[:5]} are not tensors. Save "
            "module.state_dict(), or nest it under 'state_dict' or 'model'."
        )
    return loaded
