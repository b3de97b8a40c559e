"""How far a model's probabilities can be taken at their word, and temperature scaling to make them fairer.

Out-of-fold probabilities of a cross-validation run (`phonegrade crossval`, above all leave-one-group-out: photos
of sources the fold models never saw) are the honest sample: `expected_calibration_error` measures them,
`fit_temperature` finds the T for which softmax(logits / T) fits them best (lowest negative log-likelihood), and
`apply_temperature` divides a network's last linear layer by T, so that every later step (prediction, export,
folding, heatmaps) uses the calibrated probabilities without knowing of it. Temperature scaling never changes which
label is on top (Guo et al., 2017).
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch import nn

TEMPERATURES = tuple(round(0.5 + 0.05 * i, 2) for i in range(91))  # 0.5 … 5.0


def row_probabilities(rows: list[dict], labels: list[str]) -> torch.Tensor:
    """N × labels probabilities of out-of-fold prediction rows (columns p_<label>)."""
    return torch.tensor([[float(r[f"p_{label}"]) for label in labels] for r in rows], dtype=torch.float64)


def row_targets(rows: list[dict], labels: list[str]) -> torch.Tensor:
    return torch.tensor([labels.index(r["label"]) for r in rows])


def scale_probabilities(probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(log p / T): what a model whose logits were divided by T gives (log p is the logits up to a
    per-photo constant, which softmax ignores)."""
    return torch.softmax(probabilities.clamp_min(1e-7).log() / temperature, dim=-1)


def negative_log_likelihood(probabilities: torch.Tensor, targets: torch.Tensor) -> float:
    return float(-probabilities.clamp_min(1e-7).log().gather(1, targets[:, None]).mean())


def fit_temperature(probabilities: torch.Tensor, targets: torch.Tensor) -> float:
    """The T of TEMPERATURES with the lowest negative log-likelihood of the targets."""
    return min(TEMPERATURES, key=lambda t: negative_log_likelihood(scale_probabilities(probabilities, t), targets))


def expected_calibration_error(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """Σ over equal-width bins of the top probability: (photos in the bin / all) · |accuracy − mean top
    probability| (Naeini et al., 2015)."""
    top, predicted = probabilities.max(dim=-1)
    binned = defaultdict(list)
    for p, right in zip(top.tolist(), (predicted == targets).tolist(), strict=True):
        binned[min(int(p * bins), bins - 1)].append((p, right))
    n = len(targets)
    return sum(len(b) / n * abs(sum(r for _, r in b) / len(b) - sum(p for p, _ in b) / len(b))
               for b in binned.values())


def calibration_report(rows: list[dict], labels: list[str], group: str | None = None) -> dict:
    """ECE and negative log-likelihood of out-of-fold rows, before and after temperature scaling. With `group` (a
    column of the rows, e.g. a leave-one-group-out run's `group`), each group's photos are scaled by the temperature
    fitted on the other groups' photos only, so that no photo tunes its own temperature; `temperature` is the one
    fitted on every photo (what `apply_temperature` would use)."""
    probabilities, targets = row_probabilities(rows, labels), row_targets(rows, labels)
    scaled = torch.empty_like(probabilities)
    names = sorted({r[group] for r in rows}) if group else [None]
    for name in names:
        held = torch.tensor([r[group] == name for r in rows]) if group else torch.ones(len(rows), dtype=torch.bool)
        fitted_on = ~held if group and len(names) > 1 else held
        temperature = fit_temperature(probabilities[fitted_on], targets[fitted_on])
        scaled[held] = scale_probabilities(probabilities[held], temperature)
    return {"photos": len(rows), "temperature": fit_temperature(probabilities, targets),
            "ece": round(expected_calibration_error(probabilities, targets), 4),
            "ece_scaled": round(expected_calibration_error(scaled, targets), 4),
            "nll": round(negative_log_likelihood(probabilities, targets), 4),
            "nll_scaled": round(negative_log_likelihood(scaled, targets), 4),
            "scaled_by_group": group is not None and len(names) > 1}


def apply_clean_bias(net: nn.Module, labels: list[str] | tuple[str, ...], bias: float) -> None:
    """Raise `no_scratch`'s logit by `bias`, in place, in the final linear layer's bias: the argmax then says damage
    only where the trained head finds it e^bias times likelier than clean, and every copy of the weights (ONNX,
    the browser page) does the same."""
    last = net.head[-1]
    if not isinstance(last, nn.Linear) or "no_scratch" not in labels or not math.isfinite(bias):
        raise ValueError(f"cannot raise no_scratch by {bias} in a {type(last).__name__} over {list(labels)}")
    with torch.no_grad():
        last.bias[list(labels).index("no_scratch")] += bias


def apply_temperature(net: nn.Module, temperature: float) -> None:
    """Divide the network's logits by `temperature`, in place: its final linear layer, and what a phone prior adds
    to them (models.prior)."""
    last = net.head[-1]
    if not isinstance(last, nn.Linear) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"cannot scale {type(last).__name__} by temperature {temperature}")
    with torch.no_grad():
        last.weight /= temperature
        last.bias /= temperature
        if getattr(net, "prior", None) is not None:
            net.prior.scale /= temperature
