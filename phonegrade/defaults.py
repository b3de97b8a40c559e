"""The embedded default models and example photos, installed with the package (data/ in a checkout)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The demo's models when none are named.
DEFAULT_MODELS = {task: str(files("phonegrade.assets") / "models" / f"{task}-default") for task in ("side", "scratch")}
# By the folder's name: `--model side-default` anywhere a model is read.
DEFAULT_MODEL_FOLDERS = {Path(folder).name: Path(folder) for folder in DEFAULT_MODELS.values()}
EXAMPLES_DIR = str(files("phonegrade.assets") / "examples")
