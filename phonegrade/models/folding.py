"""BatchNorm folding for inference: one pass less over each activation map, the same outputs."""

from __future__ import annotations

import copy

import torch
from torch import nn


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
