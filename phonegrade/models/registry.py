"""The named architectures (`ARCHS`) and what an arch name says, parsed once (`parse_arch` → `ArchSpec`): its
backbone, the backbone's family, whether a WearNet side trunk runs beside it, and the input its ImageNet weights
were made for. Model creation, pretrained-weight loading, default preprocessing and a card's description of the
weights all read the spec, as timm's `parse_model_name` and `PretrainedCfg` are read."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..errors import ConfigError
from ..transforms import INTERPOLATIONS, Preprocessing
from .backbones import BACKBONES, EFFICIENTNET_LITE, TIMM_PREFIX

ARCHS = ("resnet50", "mobilenet_v2", "densenet121", *EFFICIENTNET_LITE, "wearnet", "wearnet+resnet50",
         "wearnet+densenet121", "wearnet+mobilenet_v2")
WEARNET = "wearnet"


@dataclass(frozen=True)
class ArchSpec:
    name: str  # as written: "efficientnet_lite0", "wearnet+resnet50", "timm:convnext_tiny"
    backbone: str  # the main trunk: a torchvision or EfficientNet-Lite name, "wearnet", or "timm:<name>"
    family: str  # "wearnet", "torchvision", "efficientnet_lite" or "timm"
    wearnet_side: bool = False  # a WearNet trunk beside the backbone (the ensembles of the paper)

    @property
    def timm_name(self) -> str | None:
        """The timm model the backbone is (EfficientNet-Lite and `timm:` backbones), else None."""
        if self.family == "efficientnet_lite":
            return EFFICIENTNET_LITE[self.backbone][0]
        return self.backbone.removeprefix(TIMM_PREFIX) if self.family == "timm" else None

    @property
    def has_pretrained(self) -> bool:
        """Whether ImageNet weights exist for the backbone (WearNet always starts from scratch)."""
        return self.family != "wearnet"

    def preprocessing(self) -> Preprocessing:
        """The input the backbone's ImageNet weights were made for (size, interpolation, mean and std); torchvision
        backbones and WearNet take ImageNet's mean and std at 224 px. The whole photo is kept (crop_pct 1.0)."""
        if self.timm_name is None:
            return Preprocessing()
        import timm

        cfg = timm.get_pretrained_cfg(self.timm_name)
        if cfg is None:
            return Preprocessing()
        interpolation = cfg.interpolation if cfg.interpolation in INTERPOLATIONS else "bilinear"
        return Preprocessing(image_size=cfg.input_size[-1], interpolation=interpolation, mean=tuple(cfg.mean),
                             std=tuple(cfg.std))


@functools.cache
def parse_arch(name: str) -> ArchSpec:
    """The spec of a registered architecture or a `timm:<name>` model; anything else is a ConfigError."""
    if name.startswith(TIMM_PREFIX) and len(name) > len(TIMM_PREFIX):
        return ArchSpec(name, name, "timm")
    if name not in ARCHS:
        raise ConfigError(f"unknown arch {name!r}; choose one of {', '.join(ARCHS)}, or timm:<name> for a timm "
                          f"model")
    side, _, backbone = name.rpartition("+")
    family = ("wearnet" if backbone == WEARNET else "torchvision" if backbone in BACKBONES
              else "efficientnet_lite")
    return ArchSpec(name, backbone, family, wearnet_side=side == WEARNET)


def default_preprocessing(arch: str) -> Preprocessing:
    """The input `arch`'s backbone weights were made for (`ArchSpec.preprocessing`)."""
    return parse_arch(arch).preprocessing()
