"""Backgrounds and photo composition: a drawn object placed on a desk, wall or backdrop with a random pose,
perspective, shadow, light and noise."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .draw import (
    _DESK_COLORS,
    _gray,
    _hue_color,
    _jitter,
    _linear_gradient,
    _pick,
    _shade,
    _smooth_noise,
    _to_image,
    _uniform,
    _unit_grid,
)

# Drawn at this many times the requested size, then downscaled with LANCZOS: antialiased edges for one resize.
_SUPERSAMPLE = 2


# --------------------------------------------------------------------------- photo composition

def _background(rng, n):
    """Table, desk, wall or studio backdrop, n x n."""
    kind = _pick(rng, ("solid", "gradient", "noise", "wood", "desk"))
    base = _jitter(rng, _pick(rng, _DESK_COLORS), 25) if rng.random() < 0.7 else _hue_color(rng, (0.05, 0.6), (0.2, 0.95))
    if kind == "solid":
        a = np.empty((n, n, 3), np.float32)
        a[:] = np.asarray(base, np.float32)
    elif kind == "gradient":
        other = _shade(base, _uniform(rng, 0.5, 1.4)) if rng.random() < 0.6 else _hue_color(rng, (0.05, 0.6), (0.2, 0.95))
        a = _linear_gradient(n, n, base, other, _uniform(rng, 0, 2 * math.pi))
    elif kind == "noise":  # fabric, concrete, carpet
        blotches = _smooth_noise(rng, n, n, int(rng.integers(3, 12)))
        a = np.asarray(base, np.float32) * (1 + _uniform(rng, 0.15, 0.45) * (blotches - 0.5))[..., None]
        a += rng.normal(0, _uniform(rng, 3, 12), (n, n, 1)).astype(np.float32)
    elif kind == "wood":
        light = _jitter(rng, _pick(rng, ((200, 150, 100), (170, 120, 80), (225, 190, 145), (120, 80, 55))), 15)
        dark = _shade(light, _uniform(rng, 0.6, 0.8))
        xs, ys = _unit_grid(n, n)
        warp = _smooth_noise(rng, n, n, 4) * _uniform(rng, 0.5, 2.0)
        along = ys if rng.random() < 0.5 else xs
        t = along * _uniform(rng, 6, 18) + warp
        stripes = np.abs(t - np.floor(t) - 0.5) * 2.0  # triangle wave, no sin needed
        stripes = stripes * stripes
        a = np.asarray(dark, np.float32) + stripes[..., None] * (np.asarray(light, np.float32) - np.asarray(dark, np.float32))
        across = xs if along is ys else ys
        planks = int(rng.integers(2, 5))
        phase = (across + 1.0) * (planks / 2.0) + _uniform(rng, 0, 1)
        seam = (phase - np.floor(phase)) < (planks / n)  # one or two pixels between boards
        a *= np.where(seam, np.float32(0.6), np.float32(1.0))[..., None]
    else:  # desk: flat colour with fine grain and gentle light fall-off
        a = _linear_gradient(n, n, base, _shade(base, _uniform(rng, 0.75, 0.95)), _uniform(rng, 0, 2 * math.pi))
        a += rng.normal(0, _uniform(rng, 2, 6), (n, n, 1)).astype(np.float32)
    image = _to_image(a)
    if rng.random() < 0.25:
        _clutter(rng, image)
    return image


def _clutter(rng, image):
    """A sheet of paper or a pen partly in view, the same for every class."""
    n = image.size[0]
    draw = ImageDraw.Draw(image)
    angle = _uniform(rng, 0, math.pi)
    cx, cy = _pick(rng, (0.0, 1.0)) * n + rng.uniform(-0.1, 0.1) * n, rng.random() * n
    if rng.random() < 0.6:
        hw, hh, color = n * _uniform(rng, 0.25, 0.4), n * _uniform(rng, 0.3, 0.5), _gray(_uniform(rng, 225, 250))
    else:
        hw, hh, color = n * 0.012, n * _uniform(rng, 0.2, 0.35), _hue_color(rng, (0.3, 0.9), (0.2, 0.8))
    ca, sa = math.cos(angle), math.sin(angle)
    corners = [(cx + dx * ca - dy * sa, cy + dx * sa + dy * ca) for dx, dy in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))]
    draw.polygon(corners, fill=color)


def _homography(dst, src):
    """Coefficients PIL's PERSPECTIVE transform wants: output pixel (dst) -> input pixel (src)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend((u, v))
    return tuple(np.linalg.solve(np.asarray(rows, np.float64), np.asarray(rhs, np.float64)))


def _place(rng, canvas, obj, max_rotation, warp_prob, warp_max, shadow_prob=0.7):
    """Rotate, optionally shear / keystone, position and drop-shadow ``obj`` onto ``canvas``."""
    n = canvas.size[0]
    w, h = obj.size
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float64)
    if rng.random() < warp_prob:
        amount = _uniform(rng, -warp_max, warp_max)
        kind = int(rng.integers(3))
        if kind == 0:  # shear
            corners[:, 0] += amount * corners[:, 1]
        elif kind == 1:  # keystone: one end further from the camera
            corners[[0, 1] if amount > 0 else [2, 3], 0] *= 1 - abs(amount)
        else:
            corners[[1, 2] if amount > 0 else [0, 3], 1] *= 1 - abs(amount)
    angle = math.radians(_uniform(rng, -max_rotation, max_rotation))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = corners @ rotation.T
    low, high = points.min(axis=0), points.max(axis=0)
    points -= (low + high) / 2
    slack = np.maximum(n - (high - low), 0) / 2 + 0.04 * n  # may poke slightly out of frame
    centre = n / 2 + rng.uniform(-1, 1, 2) * slack * 0.85
    dst = points + centre
    coeffs = _homography(dst, [(0, 0), (w, 0), (w, h), (0, h)])
    placed = obj.transform((n, n), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    if rng.random() < shadow_prob:
        alpha = placed.getchannel("A")
        blurred = alpha.filter(ImageFilter.BoxBlur(max(1, round(n * _uniform(rng, 0.01, 0.03)))))
        strength = _uniform(rng, 0.25, 0.55)
        shadow = Image.new("L", (n, n), 0)
        offset = (int(rng.integers(-n // 30, n // 30 + 1)), int(rng.integers(0, n // 25 + 1)))
        shadow.paste(blurred.point(lambda v: int(v * strength)), offset)
        canvas.paste((0, 0, 0), (0, 0, n, n), shadow)
    canvas.paste(placed, (0, 0), placed)


def _finish(rng, canvas, size):
    """Downscale, then camera-like lighting, colour cast and sensor noise."""
    image = canvas.resize((size, size), Image.LANCZOS)
    a = np.asarray(image, np.float32)
    # Contrast pivots on mid-grey, not the image mean, so a local change (a scratch) stays local.
    a = (a - 128.0) * _uniform(rng, 0.75, 1.15) + 128.0
    a *= _uniform(rng, 0.75, 1.2) * (1 + rng.uniform(-0.06, 0.06, 3)).astype(np.float32)
    xs, ys = _unit_grid(size, size)
    if rng.random() < 0.5:  # light falling off across the frame
        angle = _uniform(rng, 0, 2 * math.pi)
        light = (xs * math.cos(angle) + ys * math.sin(angle)) * _uniform(rng, 8, 35)
    else:  # a soft highlight from a lamp or window
        cx, cy, radius = _uniform(rng, -1, 1), _uniform(rng, -1, 1), _uniform(rng, 0.4, 1.2)
        light = _uniform(rng, 15, 55) / (1.0 + ((xs - cx) ** 2 + (ys - cy) ** 2) / radius ** 2)
    a += light[..., None]
    a += rng.standard_normal(a.shape, dtype=np.float32) * np.float32(_uniform(rng, 1.0, 5.0))
    return _to_image(a)


def _photograph(rng, size, draw_object, max_rotation, scale_range, warp_prob, warp_max):
    """Background + object + pose + lighting at 2x, downscaled to size.

    ``draw_object(rng, long_side)`` returns the object as an RGBA sprite whose longer side is
    ``long_side`` pixels.
    """
    n = size * _SUPERSAMPLE
    canvas = _background(rng, n)
    obj = draw_object(rng, _uniform(rng, *scale_range) * n)
    _place(rng, canvas, obj, max_rotation, warp_prob, warp_max)
    return _finish(rng, canvas, size)


