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

# ImageNet-1k classes the prior counts as a phone: cellular telephone and iPod. Not hand-held computer (590), the top
# class of calculators held in a hand: counting it scored lower on sources never seen (docs/models.md).
PHONE_CLASSES = (487, 605)
# What models trained before config.json recorded `phone_classes` counted, and were measured with.
FORMER_PHONE_CLASSES = (487, 590, 605)
IMAGENET_CLASSES = 1000
# Names of the ImageNet classes a phone prior is likely to count, for model cards; others are shown by number.
IMAGENET_CLASS_NAMES = {487: "cellular telephone", 528: "dial telephone", 590: "hand-held computer", 605: "iPod",
                        707: "pay-phone"}


def check_phone_classes(classes) -> tuple[int, ...]:
    """The classes as a tuple, or ValueError: distinct ImageNet-1k class indices, at least one."""
    if (not isinstance(classes, (list, tuple)) or not classes or len(set(classes)) != len(classes)
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < IMAGENET_CLASSES for c in classes)):
        raise ValueError(f"phone classes must be distinct ImageNet class indices (0 to {IMAGENET_CLASSES - 1}), "
                         f"at least one; got {classes!r}")
    return tuple(classes)


def describe_phone_classes(classes) -> str:
    """E.g. "cellular telephone (487), iPod (605)"."""
    return ", ".join(f"{IMAGENET_CLASS_NAMES[c]} ({c})" if c in IMAGENET_CLASS_NAMES else f"class {c}"
                     for c in classes)


class PhonePrior(nn.Module):
    def __init__(self, in_features: int, num_classes: int, none_index: int, threshold: float,
                 classes: tuple[int, ...] = PHONE_CLASSES):
        super().__init__()
        if not 0 < threshold < 1:
            raise ValueError(f"the phone prior's threshold must lie between 0 and 1, got {threshold}")
        self.imagenet = nn.Linear(in_features, IMAGENET_CLASSES)
        self.imagenet.requires_grad_(False)
        self.register_buffer("classes", torch.tensor(check_phone_classes(classes)), persistent=False)
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
