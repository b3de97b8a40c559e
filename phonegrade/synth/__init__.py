"""Procedurally generated phone photos for demos and tests.

These are drawings, not realistic photos: each image is a phone (or a look-alike) built
from rounded rectangles, circles and gradients, put on a random background with random
pose, lighting and noise.  They exist so that the whole pipeline (dataset loading,
training, evaluation, the demo) can run end to end without any downloaded data, and so
that a model trained on them shows whether the training code can learn at all.

Every image is drawn at ``scene._SUPERSAMPLE`` times the requested size and downscaled with
LANCZOS, which antialiases the edges for the price of one resize.  All randomness comes
from the ``numpy.random.Generator`` handed in, so the same generator state gives the same
pixels.  Array maths sticks to exactly rounded operations (no exp/sin on arrays) so the
output does not depend on which SIMD code path numpy picks on a given CPU.
"""

from __future__ import annotations

import functools
import numbers
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from phonegrade.labels import labels_for_task

from .draw import _pick
from .lookalikes import _LOOKALIKES
from .phones import _phone_back, _phone_front
from .scene import _photograph
from .scratches import _scratches
from .screens import _dust, _glare

_MIN_SIZE = 16

# Order fixes the task index that goes into every image's seed; append, never reorder.
_TASK_ORDER = ("side", "scratch")


# --------------------------------------------------------------------------- public API

def _check_args(task, label, size, rng):
    labels = labels_for_task(task)
    if label not in labels:
        raise ValueError(f"unknown {task} label {label!r}; expected one of {list(labels)}")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < _MIN_SIZE:
        raise ValueError(f"size must be an integer >= {_MIN_SIZE}, got {size!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def render_side(label: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A size x size RGB picture of a phone front, a phone back, or a look-alike ("none")."""
    _check_args("side", label, size, rng)
    size = int(size)
    if label == "front":
        dark = rng.random() < 0.35

        def screen_fx(screen):
            return _glare(rng, screen) if rng.random() < 0.3 else screen

        draw = functools.partial(_phone_front, dark=dark, screen_fx=screen_fx)
    elif label == "back":
        draw = _phone_back
    else:
        draw = _pick(rng, _LOOKALIKES)
    return _photograph(rng, size, draw, max_rotation=30, scale_range=(0.45, 0.85), warp_prob=0.3, warp_max=0.15)


def render_scratch(label: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A size x size RGB picture of a phone front whose screen has major, minor or no scratches.

    Scratches come from their own generator, seeded from ``rng`` the same way for every
    label, so one generator state renders the same photo with and without scratches.
    """
    _check_args("scratch", label, size, rng)
    size = int(size)
    dark = rng.random() < 0.5
    scratch_rng = np.random.default_rng(int(rng.integers(2**63)))

    def screen_fx(screen):
        if rng.random() < 0.5:
            screen = _glare(rng, screen)
        if rng.random() < 0.3:
            screen = _dust(rng, screen)
        if label != "no_scratch":
            screen = _scratches(scratch_rng, screen, major=label == "major_scratch")
        return screen

    draw = functools.partial(_phone_front, dark=dark, screen_fx=screen_fx)
    return _photograph(rng, size, draw, max_rotation=10, scale_range=(0.65, 0.9), warp_prob=0.15, warp_max=0.06)


RENDERERS: dict[str, Callable[[str, int, np.random.Generator], Image.Image]] = {
    "side": render_side,
    "scratch": render_scratch,
}


def render(task: str, label: str, size: int, rng: np.random.Generator) -> Image.Image:
    """Render one synthetic image of ``label`` for ``task`` ("side" or "scratch")."""
    renderer = RENDERERS.get(task)
    if renderer is None:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(RENDERERS)}")
    return renderer(label, size, rng)


def _image_rng(seed, task, label_index, i):
    return np.random.default_rng(np.random.SeedSequence([seed, _TASK_ORDER.index(task), label_index, i]))


def _has_files(folder: Path) -> bool:
    if not folder.exists():
        return False
    if not folder.is_dir():
        return True
    return any(p.is_file() or p.is_symlink() for p in folder.rglob("*"))


def write_synthetic_dataset(
    task: str,
    out_dir,
    per_class: int,
    size: int = 128,
    seed: int = 0,
    val_fraction: float = 0.2,
    progress: bool = True,
    *,
    overwrite: bool = False,
) -> dict[str, dict[str, int]]:
    """Write an imagefolder dataset ``out_dir/{train,val}/<label>/<label>_<i:05d>.png``.

    Each label gets ``per_class`` images; ``round(per_class * val_fraction)`` of them go to
    val (at least one and at most ``per_class - 1``, so both splits are non-empty).  Image
    ``i`` of a label is drawn from its own generator seeded by (seed, task, label, i), so
    the files are byte-identical for the same arguments whatever order they are made in.
    Returns the counts written, ``{"train": {label: n}, "val": {label: n}}``.
    """
    if task not in RENDERERS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(RENDERERS)}")
    labels = labels_for_task(task)
    if isinstance(per_class, bool) or not isinstance(per_class, numbers.Integral) or per_class < 2:
        raise ValueError(f"per_class must be an integer >= 2 (one train and one val image at least), got {per_class!r}")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < _MIN_SIZE:
        raise ValueError(f"size must be an integer >= {_MIN_SIZE}, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}")
    per_class, size, seed = int(per_class), int(size), int(seed)

    out = Path(out_dir)
    splits = {"train": out / "train", "val": out / "val"}
    occupied = [str(p) for p in splits.values() if _has_files(p)]
    if occupied and not overwrite:
        raise FileExistsError(f"{', '.join(occupied)} already contain files; pass overwrite=True to replace them")
    for folder in splits.values():
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
        elif folder.exists() or folder.is_symlink():
            folder.unlink()

    n_val = min(max(round(per_class * val_fraction), 1), per_class - 1)
    n_train = per_class - n_val
    counts = {"train": {label: 0 for label in labels}, "val": {label: 0 for label in labels}}
    bar = None
    if progress:
        from tqdm import (
            tqdm,  # optional at import time; only needed when showing progress
        )

        bar = tqdm(total=per_class * len(labels), desc=f"synthetic {task}", unit="img")
    try:
        for label_index, label in enumerate(labels):
            for split in splits:
                (splits[split] / label).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                split = "train" if i < n_train else "val"
                image = render(task, label, size, _image_rng(seed, task, label_index, i))
                image.save(splits[split] / label / f"{label}_{i:05d}.png", format="PNG")
                counts[split][label] += 1
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return counts


__all__ = [
    "RENDERERS",
    "render",
    "render_scratch",
    "render_side",
    "write_synthetic_dataset",
]
