"""Focal loss (Lin et al., 2017): cross-entropy that down-weights examples the model already gets right."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0,
               class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of  -Σ_c t_c · w_c · (1 - p_c)^gamma · log p_c  over the batch.

    `targets` are class indices (t one-hot) or a (batch, classes) float tensor of soft targets, as MixUp and
    CutMix make them. gamma=0 and no weights is cross-entropy.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)
    if targets.dtype.is_floating_point:
        soft = targets.float()
    else:
        soft = F.one_hot(targets, logits.shape[-1]).float()
    loss = -soft * ((1.0 - log_probs.exp()) ** gamma) * log_probs
    if class_weights is not None:
        loss = loss * class_weights.to(loss.device)
    return loss.sum(dim=-1).mean()


def balanced_class_weights(label_counts: list[int]) -> torch.Tensor:
    """Weights n / (k · n_c) over the k classes present, as scikit-learn's class_weight="balanced" computes them.
    A class without training images (a leave-one-group-out fold can hold all of one out) gets weight 0: no
    training target is of that class, so its weight never counts."""
    counts = torch.tensor(label_counts, dtype=torch.float32)
    present = counts > 0
    if not present.any():
        raise ValueError("no training images")
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (int(present.sum()) * counts[present])
    return weights
