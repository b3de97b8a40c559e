"""Scratches and cracks drawn on a screen: minor ones short and faint, major ones long, many and bright."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .draw import _pick, _to_image, _uniform

# --------------------------------------------------------------------------- scratches

def _wandering_polyline(rng, start, heading, length, segments, bend):
    """A slightly curved line: the heading drifts a little at each segment."""
    x, y = start
    points = [(x, y)]
    step = length / segments
    for _ in range(segments):
        heading += rng.normal(0, bend)
        x += step * math.cos(heading)
        y += step * math.sin(heading)
        points.append((x, y))
    return points


def _crack(draw, rng, w, h, width, value):
    """Branching lines spreading from one impact point, like a cracked screen."""
    cx, cy = _uniform(rng, 0.15, 0.85) * w, _uniform(rng, 0.15, 0.85) * h
    for _ in range(int(rng.integers(3, 7))):
        heading = _uniform(rng, 0, 2 * math.pi)
        points = _wandering_polyline(rng, (cx, cy), heading, _uniform(rng, 0.15, 0.45) * h, 6, 0.35)
        draw.line(points, fill=value, width=width, joint="curve")
        if rng.random() < 0.6:
            k = int(rng.integers(2, len(points) - 1))
            branch = _wandering_polyline(rng, points[k], heading + _pick(rng, (-0.8, 0.8)), _uniform(rng, 0.05, 0.15) * h, 4, 0.3)
            draw.line(branch, fill=value, width=max(1, width - 1), joint="curve")


def _scratches(rng, screen, major):
    """Draw scratches into a screen image.

    A scratch scatters light, so it shows as a line brighter than dark content and as a
    greyish line over bright content.  Minor: 1-3 faint, thin, short lines.  Major: 5-15
    long, bright, thicker lines, often crossing, sometimes with a branching crack.
    """
    w, h = screen.size
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    if major:
        for _ in range(int(rng.integers(5, 16))):
            length = _uniform(rng, 0.2, 0.6) * h
            start = (_uniform(rng, 0.05, 0.95) * w, _uniform(rng, 0.05, 0.95) * h)
            heading = _uniform(rng, 0, 2 * math.pi)
            width = max(2, round(_uniform(rng, 0.014, 0.026) * h))
            points = _wandering_polyline(rng, start, heading, length, 6, 0.12)
            draw.line(points, fill=int(rng.integers(200, 256)), width=width, joint="curve")
        if rng.random() < 0.4:
            _crack(draw, rng, w, h, max(2, round(0.014 * h)), 235)
    else:
        for _ in range(int(rng.integers(1, 4))):
            length = _uniform(rng, 0.05, 0.15) * h
            start = (_uniform(rng, 0.1, 0.9) * w, _uniform(rng, 0.1, 0.9) * h)
            width = max(1, round(0.014 * h))
            points = _wandering_polyline(rng, start, _uniform(rng, 0, 2 * math.pi), length, 4, 0.12)
            draw.line(points, fill=int(rng.integers(175, 240)), width=width, joint="curve")
    coverage = np.asarray(mask, np.float32)[..., None] / 255.0
    a = np.asarray(screen, np.float32)
    luminance = a @ np.array([0.299, 0.587, 0.114], np.float32)
    target = np.where(luminance < 150, 250.0, 105.0).astype(np.float32)[..., None]
    a += (target - a) * coverage
    return _to_image(a)


