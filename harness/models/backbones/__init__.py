"""Feature extractors ("backbones") by name, with one way to load weights for all of them.

A backbone maps ``(N, C, H, W)`` images to ``(N, feature_dim)`` features: global pooling and
flattening are included, the classifier is not (the harness adds an incremental head). Every
backbone is registered in ``BACKBONES`` and built through ``create_backbone``, so suites name
backbones as data and the contract tests can run over everything registered.

Weights are given as one string so that suites and command lines can carry them:
``None`` (random init), ``"torchvision:<ENUM>"`` (torchvision's pre-trained weights, e.g.
``torchvision:IMAGENET1K_V1``, read from torch's hub cache) or a path to a local state dict.
``harness.models.weights`` resolves either to a file on this machine and its sha256, and never
downloads; each backbone then maps the state dict onto its own layout (e.g. the CIFAR stem of
``resnet34_cifar`` from ImageNet's 7x7 stem) and loads it strictly.

One module per family (``compact_cnn``, ``resnet``, ``mobilenet``; timm's models through
``harness.models.timm_backbones``), and ``registry`` for what they share. Importing this
package registers every family.
"""

from __future__ import annotations

from harness.models.backbones import compact_cnn, mobilenet, resnet  # noqa: F401 (registers)
from harness.models.backbones.registry import (
    BACKBONES,
    HEAD_KEY_PREFIXES,
    Backbone,
    BackboneFactory,
    BackboneRegistry,
    create_backbone,
    load_backbone_state,
    load_local_weights,
)
from harness.models.backbones.resnet import cifar_stem_weight

__all__ = [
    "BACKBONES", "HEAD_KEY_PREFIXES", "Backbone", "BackboneFactory", "BackboneRegistry",
    "cifar_stem_weight", "create_backbone", "load_backbone_state", "load_local_weights",
]  # fmt: skip
