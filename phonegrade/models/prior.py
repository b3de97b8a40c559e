"""What ImageNet already knows about a photo, as evidence for the side model's `none`.

The EfficientNet-Lite weight files hold the ImageNet classifier too. Over a trunk that did not train (every block
frozen), the pooled features are ImageNet's own, and that classifier's probability of the phone-like classes says
whether there is a phone in the photo at all, learnt from a thousand kinds of things, rooms, trees and laptops
among them, that a few hundred training photos cannot show. `PhonePrior` adds log(threshold / p_phone) to the
`none` logit when p_phone is below the threshold, and nothing otherwise: a photo ImageNet finds nothing phone-like
in needs more evidence to be called a phone's front or back. It acts at prediction time (eval mode) only, so the
head learns from the photos alone; docs/models.md has the measurements that chose it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ImageNet-1k classes of hand-held phone-like devices: cellular telephone, hand-held computer, iPod.
PHONE_CLASSES = (487, 590, 605)
IMAGENET_CLASSES = 1000


class PhonePrior(nn.Module):
    def __init__(self, in_features: int, num_classes: int, none_index: int, threshold: float,
                 classes: tuple[int, ...] = PHONE_CLASSES):
        super().__init__()
        if not 0 < threshold < 1:
            raise ValueError(f"the phone prior's threshold must lie between 0 and 1, got {threshold}")
        self.imagenet = nn.Linear(in_features, IMAGENET_CLASSES)
        self.imagenet.requires_grad_(False)
        self.register_buffer("classes", torch.tensor(classes), persistent=False)
        self.register_buffer("none_mask", F.one_hot(torch.tensor(none_index), num_classes).float(), persistent=False)
        # 1 / the temperature the model's logits are divided by (calibration.apply_temperature): saved with it.
        self.register_buffer("scale", torch.ones(()))
        self.log_threshold = math.log(threshold)

    def phone_log_probability(self, features: torch.Tensor) -> torch.Tensor:
        """log p(a phone-like ImageNet class) per photo, from the trunk's feature map."""
        log_p = F.log_softmax(self.imagenet(features.mean(dim=(2, 3))), dim=-1)
        return torch.logsumexp(log_p.index_select(1, self.classes), dim=-1)

    def forward(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        boost = F.relu(self.log_threshold - self.phone_log_probability(features)) * self.scale
        return logits + boost[:, None] * self.none_mask.to(logits.dtype)
