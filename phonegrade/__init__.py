"""phonegrade: grade photos of mobile phones (which side is shown, how scratched the screen is)."""

from importlib.resources import files

from .classifier import PhoneGradeClassifier
from .errors import PhoneGradeError
from .labels import SCRATCH_LABELS, SIDE_LABELS, TASK_LABELS
from .models import ARCHS, create_model
from .version import __version__

# The demo's models when none are named, installed with the package (data/models/ in a checkout).
DEFAULT_MODELS = {task: str(files("phonegrade.assets") / "models" / f"{task}-default") for task in ("side", "scratch")}
EXAMPLES_DIR = str(files("phonegrade.assets") / "examples")

__all__ = ["ARCHS", "DEFAULT_MODELS", "EXAMPLES_DIR", "PhoneGradeClassifier", "PhoneGradeError", "SCRATCH_LABELS",
           "SIDE_LABELS", "TASK_LABELS", "__version__", "create_model"]
