"""The registry of named architectures and the one factory that builds them, `create_model`."""

from __future__ import annotations

import torch

from ..errors import ConfigError, PretrainedWeightsError
from .backbones import BACKBONES, EFFICIENTNET_LITE, TIMM_PREFIX, _timm_trunk
from .net import PhoneGradeNet
from .pretrained import imagenet_classifier, load_backbone, load_timm_backbone
from .prior import PhonePrior
from .wearnet import wearnet_trunk

ARCHS = ("resnet50", "mobilenet_v2", "densenet121", *EFFICIENTNET_LITE, "wearnet", "wearnet+resnet50",
         "wearnet+densenet121", "wearnet+mobilenet_v2")


def check_arch(arch: str) -> str:
    """`arch` if it names a registered architecture or a `timm:<name>` model, else a ConfigError."""
    if arch in ARCHS or (arch.startswith(TIMM_PREFIX) and len(arch) > len(TIMM_PREFIX)):
        return arch
    raise ConfigError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}, or timm:<name> for a timm model")


def has_pretrained_backbone(arch: str) -> bool:
    backbone = arch.split("+")[-1]
    return backbone in BACKBONES or backbone in EFFICIENTNET_LITE or backbone.startswith(TIMM_PREFIX)


def create_model(arch: str, num_classes: int = 3, weights: str = "none",
                 trainable_blocks: int | None = None, phone_prior: float | None = None,
                 none_index: int = 2) -> PhoneGradeNet:
    """Build a registered architecture (or a `timm:<name>` model).

    weights: "none", "imagenet" or a state-dict path, applied to the pretrained backbone (WearNet always
    starts from scratch). trainable_blocks: how many top blocks of the main trunk train; by default a
    per-architecture number when starting from pretrained weights, and all blocks when starting from scratch.
    phone_prior: the threshold of a `PhonePrior` on label `none_index` (EfficientNet-Lite only; its ImageNet
    classifier is loaded with weights "imagenet", and comes from the model's own weights file otherwise).
    """
    check_arch(arch)
    parts = arch.split("+") if not arch.startswith(TIMM_PREFIX) else [arch]
    backbone_name = parts[-1]
    side = None
    if backbone_name == "wearnet":
        if weights != "none":
            raise PretrainedWeightsError("wearnet has no pretrained weights; use --weights none")
        trunk = wearnet_trunk()
    elif backbone_name in BACKBONES:
        trunk = BACKBONES[backbone_name].to_trunk(load_backbone(backbone_name, weights))
        side = wearnet_trunk() if parts[0] == "wearnet" and len(parts) == 2 else None
    else:
        trunk = _timm_trunk(load_timm_backbone(backbone_name, weights))
    model = PhoneGradeNet(trunk, num_classes, side_trunk=side)
    if phone_prior is not None:
        if backbone_name not in EFFICIENTNET_LITE or side is not None:
            raise ConfigError(f"the phone prior reads EfficientNet-Lite's ImageNet classifier; {arch} has none")
        model.prior = PhonePrior(trunk.out_channels, num_classes, none_index, phone_prior)
        if weights == "imagenet":
            weight, bias = imagenet_classifier(backbone_name)
            with torch.no_grad():
                model.prior.imagenet.weight.copy_(weight)
                model.prior.imagenet.bias.copy_(bias)
        elif weights != "none":
            raise ConfigError("the phone prior needs the ImageNet classifier of --weights imagenet")
    if trainable_blocks is None:
        trainable_blocks = trunk.default_trainable_blocks if weights != "none" else len(trunk.blocks)
    model.freeze(trainable_blocks)
    return model
