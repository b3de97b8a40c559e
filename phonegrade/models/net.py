"""The network every architecture becomes: trunk blocks (optionally two trunks side by side) and the shared
classification head; the trainable top used with cached features; the probability-averaging ensemble."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


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


class PhoneGradeNet(nn.Module):
    """Trunk blocks (optionally two trunks side by side) followed by the shared classification head."""

    def __init__(self, trunk: Trunk, num_classes: int, side_trunk: Trunk | None = None):
        super().__init__()
        self.blocks = nn.ModuleList(trunk.blocks)
        self.side_blocks = nn.ModuleList(side_trunk.blocks) if side_trunk else None
        width = trunk.out_channels + (side_trunk.out_channels if side_trunk else 0)
        self.head = classification_head(width, num_classes)
        self.prior = None  # a models.prior.PhonePrior, set by create_model: at prediction time only
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

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the trunk's feature map: the head, and at prediction time the phone prior."""
        logits = self.head(features)
        if self.prior is not None and not self.training:
            logits = self.prior(features, logits)
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

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

    Training on features computed once (`phonegrade train --cache-features`) runs only this; it holds the whole
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


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
