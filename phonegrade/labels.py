"""Canonical class labels of each task, and the folder-name aliases that map onto them."""

import re

from .errors import ConfigError, DataError

SIDE_LABELS = ("front", "back", "none")
SCRATCH_LABELS = ("major_scratch", "minor_scratch", "no_scratch")
TASK_LABELS = {"side": SIDE_LABELS, "scratch": SCRATCH_LABELS}

# Keys are folder names squashed by `_squash`: lower case, letters and digits only,
# with the common "scrach" misspelling already fixed.
_ALIASES = {
    "side": {
        "front": "front", "fronts": "front", "frontside": "front", "frontview": "front", "screen": "front",
        "back": "back", "backs": "back", "backside": "back", "backview": "back", "rear": "back", "rearside": "back",
        "none": "none", "other": "none", "others": "none", "negative": "none", "notphone": "none",
        "nophone": "none", "lookalike": "none", "lookalikes": "none",
    },
    "scratch": {
        "majorscratch": "major_scratch", "majorscratches": "major_scratch", "major": "major_scratch",
        "minorscratch": "minor_scratch", "minorscratches": "minor_scratch", "minor": "minor_scratch",
        "noscratch": "no_scratch", "noscratches": "no_scratch", "clean": "no_scratch", "noscratchs": "no_scratch",
    },
}


def _squash(name: str) -> str:
    squashed = re.sub(r"[^a-z0-9]", "", name.lower())
    return squashed.replace("scrach", "scratch")


def labels_for_task(task: str) -> tuple[str, ...]:
    try:
        return TASK_LABELS[task]
    except KeyError:
        raise ConfigError(f"unknown task {task!r}; expected one of {sorted(TASK_LABELS)}") from None


def canonical_label(task: str, name: str) -> str:
    """Map a class-folder name such as ``MAJORSCRACH`` or ``Front`` to its canonical label."""
    labels_for_task(task)
    label = _ALIASES[task].get(_squash(name))
    if label is None:
        accepted = ", ".join(TASK_LABELS[task])
        raise DataError(
            f"unknown {task} class {name!r}; expected one of: {accepted} "
            f"(case, separators and aliases such as MAJORSCRACH / NO_SCRACH / Front are accepted)"
        )
    return label
