"""Focal loss (Lin et al., 2017): cross-entropy that down-weights examples the model already gets right."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0,
               class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of  -w[y] · (1 - p_y)^gamma · log p_y  over the batch; gamma=0 and no weights is cross-entropy."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    log_p = log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
    loss = -((1.0 - log_p.exp()) ** gamma) * log_p
    if class_weights is not None:
        loss = loss * class_weights.to(loss.device)[targets]
    return loss.mean()


def balanced_class_weights(label_counts: list[int]) -> torch.Tensor:
    """Weights n / (k · n_c), as scikit-learn's class_weight="balanced" computes them."""
    counts = torch.tensor(label_counts, dtype=torch.float32)
    if (counts == 0).any():
        raise ValueError(f"every class needs at least one training image, got counts {label_counts}")
    return counts.sum() / (len(counts) * counts)
