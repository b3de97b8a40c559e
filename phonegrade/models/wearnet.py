"""WearNet: a shallow multi-scale CNN for surface scratches (after Li et al., 2022): few parameters, fast."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .net import Trunk


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
