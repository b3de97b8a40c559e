"""The embedded default models and example photos, installed with the package (data/ in a checkout)."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

# The demo's models when none are named; `--model side-default` (the folder's name) anywhere a model is read.
DEFAULT_MODELS = {task: str(files("phonegrade.assets") / "models" / f"{task}-default") for task in ("side", "scratch")}
DEFAULT_MODEL_NAMES = {Path(folder).name: folder for folder in DEFAULT_MODELS.values()}
EXAMPLES_DIR = str(files("phonegrade.assets") / "examples")


def default_model_folder(name: str | os.PathLike) -> Path | None:
    """The embedded default model called `name` (side-default, scratch-default), or None for any other name."""
    folder = DEFAULT_MODEL_NAMES.get(str(name))
    return None if folder is None else Path(folder)
