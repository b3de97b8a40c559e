"""Capture quality of a photo before it is graded: is it blurry, washed out by glare, too dark, too small; and is
it so poor that a grade would mean nothing (almost black, or tiny).

Blur, glare and darkness are measured on a copy at most `ANALYSIS_SIDE` pixels long, so the same scene measures
alike at any resolution. The thresholds were set on the 501 real development photos and on degraded copies of them with
`benchmarks/quality_thresholds.py`; docs/quality.md has the numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .images import load_image

# Blur, glare and darkness are measured on a copy at most this long (never enlarged: enlarging adds blur).
ANALYSIS_SIDE = 512
# A pixel is blown out when a channel reaches this: glare and over-exposure leave no detail there.
BLOWN_OUT_LEVEL = 250

# Thresholds, set on the 501 development photos and degraded copies of them (`benchmarks/quality_thresholds.py`,
# benchmarks/results/quality_thresholds.json); together they warn on 2.0 % of the photos as they are.
# Sharpness: the variance of the Laplacian of the grey copy. Photos: lowest 12.8, 1st percentile 33.7 (one below
# 15); blurred by 3 px at the analysis size: at most 6.5, by 6 px: at most 2.5. Below this: blurry.
MIN_SHARPNESS = 15.0
# Glare: the share of blown-out pixels in the middle of the photo (its central half across and down). Product
# shots on white are blown out around the phone, hence the middle only and a high bar. Photos: 95th percentile
# 0.50, 1.8 % above 0.65; over-exposed ×3: 53 % above (none whose middle had a mean luminance under 0.2: ×3
# leaves those unclipped; 99 % of those above 0.6).
MAX_GLARE = 0.65
# Darkness: 1 − the luminance the brightest 1 % of pixels reach. Photos: at most 0.67; darkened ×0.15: at least
# 0.85. Above MAX_DARKNESS: too dark; above BLACK_DARKNESS (nothing brighter than 4 %) nothing is left to grade.
MAX_DARKNESS = 0.75
BLACK_DARKNESS = 0.96
# Short side in pixels. Photos: at least 194; shrunk to 100 px: all below. Below MIN_SHORT_SIDE: a warning; below
# MIN_GRADABLE_SIDE: too poor to grade (the models see 128 to 224 px: enlarged from under 64, nothing is left of a
# scratch).
MIN_SHORT_SIDE = 160
MIN_GRADABLE_SIDE = 64


@dataclass(frozen=True)
class QualityReport:
    """What `measure_quality` found. `warnings` are sentences for the person who took the photo."""

    sharpness: float  # variance of the Laplacian of a grey copy at most ANALYSIS_SIDE long; low: blurry
    glare: float  # share of blown-out pixels in the photo's middle, 0..1
    darkness: float  # 1 − the luminance (0..1) the brightest 1 % of pixels reach; 1: black
    short_side: int  # pixels
    warnings: tuple[str, ...]
    too_poor_to_grade: bool

    def to_dict(self) -> dict:
        """For the JSON API: plain numbers, the warnings, and whether a grade means anything."""
        return {"warnings": list(self.warnings), "sharpness": round(self.sharpness, 2), "glare": round(self.glare, 4),
                "darkness": round(self.darkness, 4), "short_side": self.short_side,
                "gradable": not self.too_poor_to_grade}


def analysis_copy(image: Image.Image) -> Image.Image:
    """The photo at most ANALYSIS_SIDE pixels long (averaged down, never enlarged)."""
    scale = ANALYSIS_SIDE / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a grey image (0..255): edges are steep in focus, gentle when not."""
    if min(grey.shape) < 3:
        return 0.0
    laplacian = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(laplacian.var())


def glare(rgb: np.ndarray) -> float:
    """Share of blown-out pixels (any channel at BLOWN_OUT_LEVEL or above) in the central half across and down."""
    height, width = rgb.shape[:2]
    middle = rgb[height // 4: height - height // 4, width // 4: width - width // 4]
    return float((middle.max(axis=-1) >= BLOWN_OUT_LEVEL).mean())


def darkness(grey: np.ndarray) -> float:
    """1 − the luminance (0..1) that the brightest 1 % of pixels reach: a photo with nothing bright in it is dark
    however its subject is lit; a black phone on a dark desk still has highlights."""
    return float(1.0 - np.percentile(grey, 99) / 255.0)


def measure_quality(source: str | os.PathLike | bytes | Image.Image) -> QualityReport:
    """Blur, glare, darkness and size of a photo (a path, bytes or PIL image; decoded upright with `load_image`)."""
    image = load_image(source)
    small = analysis_copy(image)
    grey = np.asarray(small.convert("L"), dtype=np.float64)
    report = {"sharpness": sharpness(grey), "glare": glare(np.asarray(small)), "darkness": darkness(grey),
              "short_side": min(image.size)}
    reasons = []  # why a grade would mean nothing
    if report["darkness"] > BLACK_DARKNESS:
        reasons.append("The photo is almost entirely black: there is nothing to grade. Turn on a light and retake it.")
    if report["short_side"] < MIN_GRADABLE_SIDE:
        reasons.append(f"The photo is only {image.width}×{image.height} pixels, too small to grade: upload the "
                       f"original photo, at least {MIN_SHORT_SIDE} pixels on its short side.")
    if reasons:
        return QualityReport(**report, warnings=tuple(reasons), too_poor_to_grade=True)
    warnings = []
    if report["darkness"] > MAX_DARKNESS:
        warnings.append("The photo is too dark: add light or move somewhere brighter.")
    elif report["sharpness"] < MIN_SHARPNESS:  # a dark photo has gentle edges anyway: the darkness is the news
        warnings.append("The photo is blurry: hold the phone still and tap the screen to focus.")
    if report["glare"] > MAX_GLARE:
        warnings.append("Much of the photo is washed out by glare or over-exposure: move out of direct light or "
                        "tilt the phone away from reflections.")
    if report["short_side"] < MIN_SHORT_SIDE:
        warnings.append(f"The photo is small ({image.width}×{image.height} pixels): grades are less reliable; take "
                        f"it closer or upload the original photo.")
    return QualityReport(**report, warnings=tuple(warnings), too_poor_to_grade=False)
