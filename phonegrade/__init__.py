"""phonegrade: grade photos of mobile phones (which side is shown, how scratched the screen is)."""

from pathlib import Path

from .hub import PhoneGradeClassifier
from .labels import SCRATCH_LABELS, SIDE_LABELS, TASK_LABELS
from .models import ARCHS, create_model

__version__ = "0.1.0"

# The demo's models when none are named: small models built from `phonegrade synth` data by `make demo`.
DEFAULT_MODELS = {
    "side": str(Path(__file__).resolve().parent.parent / "data" / "models" / "side-default"),
    "scratch": str(Path(__file__).resolve().parent.parent / "data" / "models" / "scratch-default"),
}

__all__ = ["ARCHS", "DEFAULT_MODELS", "PhoneGradeClassifier", "SCRATCH_LABELS", "SIDE_LABELS", "TASK_LABELS",
           "create_model"]
