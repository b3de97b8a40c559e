"""phonegrade: grade photos of mobile phones (which side is shown, how scratched the screen is)."""

from .classifier import PhoneGradeClassifier
from .defaults import DEFAULT_MODELS, EXAMPLES_DIR
from .errors import PhoneGradeError
from .labels import SCRATCH_LABELS, SIDE_LABELS, TASK_LABELS
from .models import ARCHS, create_model
from .version import __version__

__all__ = ["ARCHS", "DEFAULT_MODELS", "EXAMPLES_DIR", "PhoneGradeClassifier", "PhoneGradeError", "SCRATCH_LABELS",
           "SIDE_LABELS", "TASK_LABELS", "__version__", "create_model"]
