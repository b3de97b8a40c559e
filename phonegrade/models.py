"""Named architectures built by one factory, `create_model`.

Every model is a feature trunk (a torchvision backbone, WearNet, or both side by side) followed by the
same classification head. Pretrained-weight handling lives here too, in `load_backbone`.
"""

from __future__ import annotations

import contextlib
import math
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights were asked for but cannot be loaded."""


def classification_head(in_channels: int, num_classes: int = 3, hidden: tuple[int, ...] = (512, 256),
                        dropout: float = 0.5) -> nn.Sequential:
    """AdaptiveAvgPool2d → Flatten → [Linear → BatchNorm1d → PReLU → Dropout] × len(hidden) → Linear."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    width = in_channels
    for size in hidden:
        layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.PReLU(), nn.Dropout(dropout)]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


@dataclass
class Trunk:
    """A feature extractor split into blocks, ordered from the input upwards."""

    blocks: list[nn.Module]
    out_channels: int
    default_trainable_blocks: int


# ---------------------------------------------------------------- WearNet

class MultiScaleBlock(nn.Module):
    """Parallel 1×1, 3×3 and dilated 3×3 (5×5 field) convolutions plus a pooled path, concatenated.

    Scratches are thin lines at many lengths; looking at several receptive fields at once is the idea
    behind WearNet (Li et al., 2022) and keeps the network shallow and small.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: bool = True):
        super().__init__()
        branch = out_channels // 4

        def conv(kernel: int, dilation: int = 1) -> nn.Conv2d:
            return nn.Conv2d(in_channels, branch, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                             bias=False)

        self.branches = nn.ModuleList([
            conv(1),
            conv(3),
            conv(3, dilation=2),
            nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(1)),
        ])
        self.norm = nn.BatchNorm2d(branch * 4)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.pool(F.relu(self.norm(x), inplace=True))


def wearnet_trunk() -> Trunk:
    stem = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32),
                         nn.ReLU(inplace=True))
    blocks = [stem, MultiScaleBlock(32, 64), MultiScaleBlock(64, 128), MultiScaleBlock(128, 192),
              MultiScaleBlock(192, 256, pool=False)]
    return Trunk(blocks, 256, default_trainable_blocks=len(blocks))


# ---------------------------------------------------------------- torchvision backbones

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

ARCHS = ("resnet50", "mobilenet_v2", "densenet121", "wearnet", "wearnet+resnet50", "wearnet+densenet121",
         "wearnet+mobilenet_v2")


def _state_dict_from_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix in (".pth", ".pt"):
        # weights_only=True: tensors and plain containers only; no arbitrary objects are unpickled.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise PretrainedWeightsError(f"{path} does not hold a state dict")
        return state
    raise PretrainedWeightsError(f"{path}: expected a .safetensors or torchvision .pth state dict")


def load_backbone(name: str, weights: str) -> nn.Module:
    """Build torchvision backbone `name` with `weights`: "none", "imagenet", or a path to a state dict."""
    spec = BACKBONES[name]
    if weights == "none":
        return spec.build(weights=None)
    if weights == "imagenet":
        enum = spec.imagenet_weights()
        try:
            return spec.build(weights=enum)
        except (urllib.error.URLError, OSError, RuntimeError) as err:
            cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
            raise PretrainedWeightsError(
                f"could not load ImageNet weights for {name} ({err}).\n"
                f"torchvision downloads them from {enum.url} into {cache}. If this machine is offline, "
                f"copy that file there (or set TORCH_HOME), pass --weights PATH to a local torchvision "
                f".pth or .safetensors state dict, or train from scratch with --weights none."
            ) from err
    path = Path(weights)
    if not path.is_file():
        raise PretrainedWeightsError(f"--weights must be 'none', 'imagenet' or a file; {weights!r} is none of them")
    model = spec.build(weights=None)
    state = _state_dict_from_file(path)
    result = model.load_state_dict(state, strict=False)
    # The torchvision classifier layer is replaced by our head, so only its keys may be absent or extra.
    classifier_prefixes = ("fc.", "classifier.")
    missing = [k for k in result.missing_keys if not k.startswith(classifier_prefixes)]
    if missing or not state:
        raise PretrainedWeightsError(
            f"{path} does not match {name}: {len(missing)} backbone tensors missing (e.g. {missing[:3]})")
    return model


# ---------------------------------------------------------------- the full model

class PhoneGradeNet(nn.Module):
    """Trunk blocks (optionally two trunks side by side) followed by the shared classification head."""

    def __init__(self, trunk: Trunk, num_classes: int, side_trunk: Trunk | None = None):
        super().__init__()
        self.blocks = nn.ModuleList(trunk.blocks)
        self.side_blocks = nn.ModuleList(side_trunk.blocks) if side_trunk else None
        width = trunk.out_channels + (side_trunk.out_channels if side_trunk else 0)
        self.head = classification_head(width, num_classes)
        self.frozen_blocks = 0

    def frozen_features(self, x: torch.Tensor) -> torch.Tensor:
        """The output of the frozen bottom blocks.

        Their weights take no gradients, so unless the input itself asks for them (saliency maps) they run
        without autograd: no graph is recorded and no activations are kept for a backward pass.
        """
        # Nothing frozen (loaded, exported models): the input is not inspected, so graph tracers see no branch.
        without_autograd = self.frozen_blocks > 0 and not x.requires_grad
        with torch.no_grad() if without_autograd else contextlib.nullcontext():
            for block in self.blocks[: self.frozen_blocks]:
                x = block(x)
        return x

    def trainable_features(self, x: torch.Tensor) -> torch.Tensor:
        """The main trunk's output, from the frozen blocks' output: the blocks that train."""
        for block in self.blocks[self.frozen_blocks:]:
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.trainable_features(self.frozen_features(x))
        if self.side_blocks is None:
            return out
        side = x
        for block in self.side_blocks:
            side = block(side)
        # Bring the WearNet map to the backbone's resolution so both fit one head.
        side = F.adaptive_avg_pool2d(side, out.shape[-2:])
        return torch.cat([out, side], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def freeze(self, trainable_blocks: int) -> None:
        """Freeze all but the top `trainable_blocks` blocks of the main trunk (WearNet side trunks stay trainable)."""
        trainable_blocks = max(0, min(trainable_blocks, len(self.blocks)))
        self.frozen_blocks = len(self.blocks) - trainable_blocks
        for i, block in enumerate(self.blocks):
            block.requires_grad_(i >= self.frozen_blocks)
        self.train(self.training)

    def train(self, mode: bool = True) -> PhoneGradeNet:
        super().train(mode)
        # Frozen blocks keep their BatchNorm statistics: they stay in eval mode even while training.
        for block in self.blocks[: self.frozen_blocks]:
            block.eval()
        return self


class TrainableTop(nn.Module):
    """The part of a PhoneGradeNet without a side trunk that trains, fed the frozen blocks' output instead of
    images.

    Training on features computed once (`train.py --cache-features`) runs only this; it holds the whole
    net, so its state dict, optimizer groups and Accelerate wrapping cover the same parameters.
    """

    def __init__(self, net: PhoneGradeNet):
        super().__init__()
        self.net = net

    def forward(self, frozen: torch.Tensor) -> torch.Tensor:
        return self.net.head(self.net.trainable_features(frozen))


class MeanProbabilityEnsemble(nn.Module):
    """Several trained models of one architecture whose class probabilities are averaged.

    Returns log mean probabilities in place of logits, so a softmax of the output is the members' mean
    probability and everything that takes logits (prediction, evaluation, export) works unchanged. Averaging
    pays where members make different errors; on the real side photos none measured above the single default
    model (docs/side-real.md).
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([F.log_softmax(member(x), dim=1) for member in self.members])
        # log(mean(p)) computed stably: no probability underflows to log(0).
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


def has_pretrained_backbone(arch: str) -> bool:
    return arch.split("+")[-1] in BACKBONES


def create_model(arch: str, num_classes: int = 3, weights: str = "none",
                 trainable_blocks: int | None = None) -> PhoneGradeNet:
    """Build a registered architecture.

    weights: "none", "imagenet" or a state-dict path, applied to the torchvision backbone (WearNet always
    starts from scratch). trainable_blocks: how many top blocks of the main trunk train; by default a
    per-architecture number when starting from pretrained weights, and all blocks when starting from scratch.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    parts = arch.split("+")
    backbone_name = parts[-1]
    if backbone_name == "wearnet":
        if weights != "none":
            raise PretrainedWeightsError("wearnet has no pretrained weights; use --weights none")
        trunk = wearnet_trunk()
        side = None
    else:
        spec = BACKBONES[backbone_name]
        trunk = spec.to_trunk(load_backbone(backbone_name, weights))
        side = wearnet_trunk() if parts[0] == "wearnet" and len(parts) == 2 else None
    model = PhoneGradeNet(trunk, num_classes, side_trunk=side)
    if trainable_blocks is None:
        trainable_blocks = trunk.default_trainable_blocks if weights != "none" else len(trunk.blocks)
    model.freeze(trainable_blocks)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
