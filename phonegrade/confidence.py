"""How sure a model is, in one place: the demo's ask-when-unsure rule, the confidence that makes a prediction
"sure" (triage, cross-validation's suspects), and the margin both measure."""

from __future__ import annotations

from collections.abc import Mapping

# Ask the uploader to confirm when a model's top two probabilities are closer than this (the demo's
# --ask-margin; measured on leave-one-source-out predictions: benchmarks/ask_margin.py, docs/demo.md).
DEFAULT_ASK_MARGIN = 0.4
# A top probability at least this high is a prediction the model is sure of: triage queues a correction that
# contradicts one, and cross-validation lists wrong ones as the first labels to check.
CONFIDENT = 0.8


def top_two_margin(probabilities: Mapping[str, float]) -> float:
    """The top probability minus the runner-up's: small when a model hesitates between two labels."""
    first, second = sorted(probabilities.values(), reverse=True)[:2]
    return first - second


def unsure(probabilities: Mapping[str, float], margin: float = DEFAULT_ASK_MARGIN) -> bool:
    """Whether the demo asks about these probabilities."""
    return top_two_margin(probabilities) < margin
