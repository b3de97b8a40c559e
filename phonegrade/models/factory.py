"""The one factory that builds every named architecture (`registry`), `create_model`."""

from __future__ import annotations

import os

import torch

from ..errors import ConfigError, PretrainedWeightsError
from .backbones import BACKBONES, _timm_trunk
from .net import PhoneGradeNet
from .pretrained import imagenet_classifier, load_backbone, load_timm_backbone
from .prior import PHONE_CLASSES, PhonePrior
from .registry import parse_arch
from .wearnet import wearnet_trunk


def check_arch(arch: str) -> str:
    """`arch` if it names a registered architecture or a `timm:<name>` model, else a ConfigError."""
    return parse_arch(arch).name


def has_pretrained_backbone(arch: str) -> bool:
    return parse_arch(arch).has_pretrained


def create_model(arch: str, num_classes: int = 3, weights: str | os.PathLike | None = "none",
                 trainable_blocks: int | None = None, phone_prior: float | None = None,
                 none_index: int = 2, phone_classes: tuple[int, ...] | None = None) -> PhoneGradeNet:
    """Build a registered architecture (or a `timm:<name>` model).

    weights: "none" (or None, as torchvision spells it), "imagenet" or a state-dict path, applied to the
    pretrained backbone (WearNet always starts from scratch). trainable_blocks: how many top blocks of the main
    trunk train; by default a per-architecture number when starting from pretrained weights, and all blocks when
    starting from scratch.
    phone_prior: the threshold of a `PhonePrior` on label `none_index` over the ImageNet classes `phone_classes`
    (default models.prior.PHONE_CLASSES); EfficientNet-Lite only: its ImageNet classifier is loaded with weights
    "imagenet", and comes from the model's own weights file otherwise.
    """
    spec = parse_arch(arch)
    weights = "none" if weights is None else os.fspath(weights)
    if spec.family == "wearnet":
        if weights != "none":
            raise PretrainedWeightsError("wearnet has no pretrained weights; use --weights none")
        trunk = wearnet_trunk()
    elif spec.family == "torchvision":
        trunk = BACKBONES[spec.backbone].to_trunk(load_backbone(spec.backbone, weights))
    else:
        trunk = _timm_trunk(load_timm_backbone(spec, weights))
    side = wearnet_trunk() if spec.wearnet_side else None
    model = PhoneGradeNet(trunk, num_classes, side_trunk=side)
    if phone_prior is not None:
        if spec.family != "efficientnet_lite" or side is not None:
            raise ConfigError(f"the phone prior reads EfficientNet-Lite's ImageNet classifier; {arch} has none")
        model.prior = PhonePrior(trunk.out_channels, num_classes, none_index, phone_prior,
                                 phone_classes or PHONE_CLASSES)
        if weights == "imagenet":
            weight, bias = imagenet_classifier(spec)
            with torch.no_grad():
                model.prior.imagenet.weight.copy_(weight)
                model.prior.imagenet.bias.copy_(bias)
        elif weights != "none":
            raise ConfigError("the phone prior needs the ImageNet classifier of --weights imagenet")
    if trainable_blocks is None:
        trainable_blocks = trunk.default_trainable_blocks if weights != "none" else len(trunk.blocks)
    model.freeze(trainable_blocks)
    return model
