"""Procedurally generated phone photos for demos and tests.

These are drawings, not realistic photos: each image is a phone (or a look-alike) built
from rounded rectangles, circles and gradients, put on a random background with random
pose, lighting and noise.  They exist so that the whole pipeline (dataset loading,
training, evaluation, the demo) can run end to end without any downloaded data, and so
that a model trained on them shows whether the training code can learn at all.

Every image is drawn at ``_SUPERSAMPLE`` times the requested size and downscaled with
LANCZOS, which antialiases the edges for the price of one resize.  All randomness comes
from the ``numpy.random.Generator`` handed in, so the same generator state gives the same
pixels.  Array maths sticks to exactly rounded operations (no exp/sin on arrays) so the
output does not depend on which SIMD code path numpy picks on a given CPU.
"""

from __future__ import annotations

import colorsys
import functools
import math
import numbers
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from phonegrade.labels import labels_for_task

_SUPERSAMPLE = 2
_MIN_SIZE = 16

# Order fixes the task index that goes into every image's seed; append, never reorder.
_TASK_ORDER = ("side", "scratch")

_SEVEN_SEGMENTS = {
    0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc",
    5: "afgcd", 6: "afgedc", 7: "abc", 8: "abcdefg", 9: "abcdfg",
}

_DESK_COLORS = (
    (181, 136, 99), (120, 85, 60), (205, 195, 180), (90, 90, 95), (232, 230, 225),
    (60, 65, 70), (150, 160, 150), (210, 180, 140), (40, 40, 45), (245, 240, 230),
    (95, 110, 130), (160, 60, 50),
)
_RIM_COLORS = (
    (200, 200, 205), (70, 72, 78), (212, 185, 140), (220, 170, 160), (60, 80, 120), (25, 25, 28),
)
_BACK_COLORS = (
    (30, 30, 32), (235, 235, 232), (205, 207, 210), (225, 200, 160), (230, 190, 180),
    (35, 45, 75), (70, 110, 90), (170, 150, 200), (180, 30, 40), (240, 120, 100),
    (150, 190, 230), (245, 215, 100), (80, 82, 88),
)
_GADGET_COLORS = (
    (25, 25, 28), (45, 45, 50), (200, 200, 205), (235, 235, 232), (215, 205, 185),
    (40, 50, 80), (170, 40, 45), (60, 110, 170),
)
_SKIN_TONES = (
    (255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66),
    (141, 85, 36), (92, 51, 23), (250, 205, 180),
)


# --------------------------------------------------------------------------- small helpers

def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _uniform(rng, lo, hi) -> float:
    return float(rng.uniform(lo, hi))


def _clamp8(value) -> int:
    return int(min(255, max(0, round(value))))


def _jitter(rng, color, amount):
    return tuple(_clamp8(c + rng.uniform(-amount, amount)) for c in color)


def _shade(color, factor):
    return tuple(_clamp8(c * factor) for c in color)


def _mix(a, b, t):
    return tuple(_clamp8(x + (y - x) * t) for x, y in zip(a, b))


def _gray(value):
    v = _clamp8(value)
    return (v, v, v)


def _hue_color(rng, sat=(0.5, 1.0), val=(0.6, 1.0), hue=None):
    h = rng.random() if hue is None else hue % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, _uniform(rng, *sat), _uniform(rng, *val))
    return (_clamp8(r * 255), _clamp8(g * 255), _clamp8(b * 255))


def _luminance(color) -> float:
    r, g, b = color[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _with_alpha(color, alpha):
    return (*color[:3], _clamp8(alpha))


def _rounded_rect(draw, box, radius, fill=None, outline=None, width=1):
    """``draw.rounded_rectangle`` that tolerates boxes given in any corner order."""
    x0, y0, x1, y1 = box
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    radius = max(0.0, min(radius, (x1 - x0) / 2, (y1 - y0) / 2))
    draw.rounded_rectangle((x0, y0, x1, y1), radius=radius, fill=fill, outline=outline, width=width)


def _circle(draw, cx, cy, r, fill=None, outline=None, width=1):
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=width)


def _capsule(draw, p0, p1, thickness, fill):
    """A thick line with round ends: fingers, thumbs, pens."""
    draw.line((p0, p1), fill=fill, width=max(1, round(thickness)))
    _circle(draw, p0[0], p0[1], thickness / 2, fill=fill)
    _circle(draw, p1[0], p1[1], thickness / 2, fill=fill)


def _unit_grid(w, h):
    """Pixel-centre coordinates scaled to [-1, 1] along each axis, as broadcastable float32 arrays."""
    xs = (np.arange(w, dtype=np.float32) + 0.5) * (2.0 / w) - 1.0
    ys = (np.arange(h, dtype=np.float32) + 0.5) * (2.0 / h) - 1.0
    return xs[None, :], ys[:, None]


def _linear_gradient(w, h, c0, c1, angle):
    """RGB array fading from c0 to c1 along direction ``angle`` (radians)."""
    xs, ys = _unit_grid(w, h)
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = np.clip((t + 1.0) * 0.5, 0.0, 1.0)[..., None]
    c0 = np.asarray(c0, np.float32)
    c1 = np.asarray(c1, np.float32)
    return c0 + t * (c1 - c0)


def _smooth_noise(rng, w, h, cells):
    """Blotchy noise in [0, 1]: a coarse random grid upsampled smoothly."""
    gw = max(2, int(cells))
    gh = max(2, int(round(cells * h / max(w, 1))))
    coarse = (rng.random((gh, gw)) * 255).astype(np.uint8)
    up = Image.fromarray(coarse, "L").resize((w, h), Image.BICUBIC)
    return np.asarray(up, np.float32) / 255.0


def _to_image(array) -> Image.Image:
    return Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8), "RGB")


class _Sprite:
    """An RGB drawing plus the mask of its silhouette.

    Drawing in RGB mode lets translucent detail (reflections, dock backgrounds) blend;
    only calls through ``shape`` extend the silhouette, detail stays inside it.
    """

    def __init__(self, w, h):
        self.w, self.h = int(w), int(h)
        self.rgb = Image.new("RGB", (self.w, self.h))
        self.mask = Image.new("L", (self.w, self.h), 0)
        self.draw = ImageDraw.Draw(self.rgb, "RGBA")
        self._mask_draw = ImageDraw.Draw(self.mask)

    def shape(self, kind, *args, fill, **kwargs):
        if kind == "rounded_rect":
            _rounded_rect(self.draw, *args, fill=fill, **kwargs)
            _rounded_rect(self._mask_draw, *args, fill=255)
        elif kind == "circle":
            _circle(self.draw, *args, fill=fill)
            _circle(self._mask_draw, *args, fill=255)
        elif kind == "capsule":
            _capsule(self.draw, *args, fill=fill)
            _capsule(self._mask_draw, *args, fill=255)
        else:  # "ellipse", "polygon", "rectangle"
            getattr(self.draw, kind)(*args, fill=fill, **kwargs)
            getattr(self._mask_draw, kind)(*args, fill=255)

    def paste(self, image, xy, mask=None):
        """Paste detail (a screen, a gradient panel) inside the silhouette."""
        self.rgb.paste(image, (int(round(xy[0])), int(round(xy[1]))), mask)

    def image(self) -> Image.Image:
        out = self.rgb.copy()
        out.putalpha(self.mask)
        return out


def _seven_segment(draw, x, y, w, h, digit, fill, thickness):
    t = thickness
    half = h / 2
    boxes = {
        "a": (x + t * 0.5, y, x + w - t * 0.5, y + t),
        "d": (x + t * 0.5, y + h - t, x + w - t * 0.5, y + h),
        "g": (x + t * 0.5, y + half - t / 2, x + w - t * 0.5, y + half + t / 2),
        "f": (x, y + t * 0.5, x + t, y + half),
        "b": (x + w - t, y + t * 0.5, x + w, y + half),
        "e": (x, y + half, x + t, y + h - t * 0.5),
        "c": (x + w - t, y + half, x + w, y + h - t * 0.5),
    }
    for segment in _SEVEN_SEGMENTS[digit]:
        _rounded_rect(draw, boxes[segment], t * 0.4, fill=fill)


def _digits(draw, values, x, y, digit_w, digit_h, fill, colon_after=None):
    """A row of seven-segment digits, e.g. a clock or a calculator display."""
    t = max(1.0, digit_w * 0.22)
    for k, value in enumerate(values):
        _seven_segment(draw, x, y, digit_w, digit_h, value, fill, t)
        x += digit_w * 1.35
        if colon_after is not None and k == colon_after:
            _circle(draw, x + t * 0.3, y + digit_h * 0.3, t * 0.6, fill=fill)
            _circle(draw, x + t * 0.3, y + digit_h * 0.7, t * 0.6, fill=fill)
            x += digit_w * 0.6
    return x


def _text_lines(draw, rng, x, y, width, lines, pitch, bar_h, fill):
    """Grey bars standing in for a paragraph of text; returns the y below it."""
    for k in range(lines):
        frac = _uniform(rng, 0.3, 0.7) if k == lines - 1 else _uniform(rng, 0.75, 1.0)
        _rounded_rect(draw, (x, y, x + width * frac, y + bar_h), bar_h / 2, fill=fill)
        y += pitch
    return y


# --------------------------------------------------------------------------- screen content

def _wallpaper(rng, w, h, dark):
    """A few related colours blurred together: reads as an abstract wallpaper or a soft photo."""
    gw, gh = int(rng.integers(2, 4)), int(rng.integers(2, 5))
    base_hue = rng.random()
    colors = [
        _hue_color(rng, (0.35, 0.9), (0.12, 0.45) if dark else (0.55, 0.95),
                   hue=base_hue + rng.uniform(-0.18, 0.18))
        for _ in range(gw * gh)
    ]
    coarse = np.array(colors, np.uint8).reshape(gh, gw, 3)
    return Image.fromarray(coarse, "RGB").resize((w, h), Image.BICUBIC)


def _landscape(rng, w, h, dark):
    """Sky gradient, maybe a sun, and layered hills: a photo-like picture."""
    mood = "night" if dark else _pick(rng, ("day", "day", "sunset"))
    if mood == "night":
        top, bottom = _hue_color(rng, (0.5, 0.9), (0.05, 0.2), hue=0.65), _hue_color(rng, (0.4, 0.8), (0.2, 0.4), hue=0.7)
    elif mood == "sunset":
        top, bottom = _hue_color(rng, (0.4, 0.8), (0.4, 0.7), hue=0.75), _hue_color(rng, (0.5, 0.9), (0.85, 1.0), hue=0.07)
    else:
        top, bottom = _hue_color(rng, (0.5, 0.8), (0.6, 0.9), hue=0.58), _hue_color(rng, (0.1, 0.35), (0.85, 1.0), hue=0.55)
    img = _to_image(_linear_gradient(w, h, top, bottom, math.pi / 2))
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.6:
        sun = (245, 245, 220) if mood == "night" else _hue_color(rng, (0.1, 0.6), (0.95, 1.0), hue=0.12)
        _circle(draw, _uniform(rng, 0.15, 0.85) * w, _uniform(rng, 0.12, 0.4) * h,
                _uniform(rng, 0.04, 0.09) * max(w, h), fill=sun)
    if mood == "night":
        for _ in range(int(rng.integers(5, 20))):
            _circle(draw, rng.random() * w, rng.random() * h * 0.5, max(1, 0.004 * max(w, h)), fill=(230, 230, 240))
    layers = int(rng.integers(2, 4))
    hill_hue = _pick(rng, (0.3, 0.33, 0.08, 0.6))
    for k in range(layers):
        base_y = h * (0.5 + 0.15 * k + rng.uniform(-0.05, 0.05))
        steps = 8
        points = [(0, h)]
        for s in range(steps + 1):
            points.append((w * s / steps, base_y - rng.uniform(0, 0.15) * h))
        points.append((w, h))
        value = (0.35 if dark else 0.75) * (1 - 0.25 * k)
        draw.polygon(points, fill=_hue_color(rng, (0.3, 0.7), (value * 0.8, value), hue=hill_hue + 0.03 * k))
    return img


def _status_bar(draw, w, u, fg, rng):
    """Clock, signal bars and battery along the top edge; returns the bar height."""
    cy = 3.8 * u
    _rounded_rect(draw, (6 * u, cy - 1.3 * u, 16 * u, cy + 1.3 * u), u, fill=fg)
    x = w - 27 * u
    for k in range(4):
        bar_h = (k + 1) * 0.7 * u
        draw.rectangle((x + k * 1.8 * u, cy + 1.4 * u - bar_h, x + k * 1.8 * u + 1.1 * u, cy + 1.4 * u), fill=fg)
    _rounded_rect(draw, (w - 15 * u, cy - 1.4 * u, w - 6 * u, cy + 1.4 * u), 0.6 * u,
                  outline=fg, width=max(1, round(0.4 * u)))
    charge = _uniform(rng, 0.2, 1.0)
    draw.rectangle((w - 14 * u, cy - 0.7 * u, w - 14 * u + charge * 7 * u, cy + 0.7 * u), fill=fg)
    return 7.5 * u


def _app_icon(draw, rng, x, y, s):
    color = _hue_color(rng, (0.45, 0.95), (0.55, 1.0))
    _rounded_rect(draw, (x, y, x + s, y + s), s * 0.24, fill=color)
    glyph = int(rng.integers(4))
    white = (255, 255, 255)
    if glyph == 0:
        _circle(draw, x + s / 2, y + s / 2, s * 0.24, fill=white)
    elif glyph == 1:
        _rounded_rect(draw, (x + s * 0.25, y + s * 0.3, x + s * 0.75, y + s * 0.7), s * 0.08, fill=white)
    elif glyph == 2:
        draw.polygon([(x + s * 0.3, y + s * 0.72), (x + s * 0.5, y + s * 0.25), (x + s * 0.7, y + s * 0.72)], fill=white)


def _screen_icons(rng, w, h, dark):
    """Home screen: wallpaper, grid of coloured rounded-square app icons, a dock."""
    u = min(w, h) / 100
    img = _wallpaper(rng, w, h, dark) if rng.random() < 0.7 else _landscape(rng, w, h, dark)
    draw = ImageDraw.Draw(img, "RGBA")
    fg = (255, 255, 255) if dark or rng.random() < 0.7 else (20, 20, 20)
    top = _status_bar(draw, w, u, fg, rng) + 5 * u
    cols = max(4, int(w / (24 * u)))
    cell_w = w / cols
    icon = cell_w * _uniform(rng, 0.55, 0.68)
    cell_h = icon * 1.5
    dock_h = icon + 8 * u
    rows = max(1, int((h - top - dock_h - 6 * u) / cell_h))
    filled = int(rng.integers(max(1, cols * rows // 2), cols * rows + 1))
    label_color = _with_alpha(fg, 200)
    for k in range(filled):
        r, c = divmod(k, cols)
        x = c * cell_w + (cell_w - icon) / 2
        y = top + r * cell_h
        _app_icon(draw, rng, x, y, icon)
        _rounded_rect(draw, (x + icon * 0.15, y + icon * 1.1, x + icon * 0.85, y + icon * 1.22), icon * 0.06, fill=label_color)
    # page dots and dock
    dots_y = h - dock_h - 3 * u
    for k in range(3):
        _circle(draw, w / 2 + (k - 1) * 3 * u, dots_y, 0.8 * u, fill=_with_alpha(fg, 255 if k == 0 else 120))
    _rounded_rect(draw, (2 * u, h - dock_h, w - 2 * u, h - 2 * u), 5 * u, fill=(255, 255, 255, 70))
    for c in range(min(cols, 5)):
        x = c * (w / min(cols, 5)) + (w / min(cols, 5) - icon) / 2
        _app_icon(draw, rng, x, h - dock_h + (dock_h - 2 * u - icon) / 2, icon)
    return img


def _screen_app(rng, w, h, dark):
    """A text app: app bar, paragraphs, list rows with avatars, image cards."""
    u = min(w, h) / 100
    bg = _gray(_uniform(rng, 12, 35)) if dark else _gray(_uniform(rng, 236, 255))
    text = _gray(_uniform(rng, 170, 215)) if dark else _gray(_uniform(rng, 50, 110))
    faint = _mix(bg, text, 0.5)
    accent = _hue_color(rng, (0.45, 0.9), (0.5, 0.9))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img, "RGBA")
    if rng.random() < 0.6:
        bar_h = 22 * u
        draw.rectangle((0, 0, w, bar_h), fill=accent)
        _status_bar(draw, w, u, (255, 255, 255), rng)
        _rounded_rect(draw, (6 * u, 12 * u, 6 * u + _uniform(rng, 25, 45) * u, 16 * u), 2 * u, fill=(255, 255, 255))
        y = bar_h + 5 * u
    else:
        y = _status_bar(draw, w, u, text, rng) + 4 * u
        _rounded_rect(draw, (6 * u, y, 6 * u + _uniform(rng, 30, 55) * u, y + 6 * u), 2 * u, fill=text)
        y += 12 * u
    margin = 6 * u
    while y < h - 22 * u:
        block = _pick(rng, ("paragraph", "paragraph", "row", "row", "card"))
        if block == "paragraph":
            y = _text_lines(draw, rng, margin, y, w - 2 * margin, int(rng.integers(2, 6)), 5 * u, 2.4 * u, text) + 4 * u
        elif block == "row":
            r = 5 * u
            _circle(draw, margin + r, y + r, r, fill=_hue_color(rng, (0.3, 0.8), (0.5, 0.95)))
            _text_lines(draw, rng, margin + 2 * r + 4 * u, y + 1.5 * u, w - 2 * margin - 2 * r - 4 * u, 2, 4.5 * u, 2.2 * u, text)
            y += 2 * r + 3 * u
            draw.line((margin, y, w - margin, y), fill=faint, width=max(1, round(0.3 * u)))
            y += 3 * u
        else:
            card_h = min(_uniform(rng, 28, 45) * u, h - 22 * u - y)
            if card_h > 8 * u:
                card = _wallpaper(rng, int(w - 2 * margin), int(card_h), dark=rng.random() < 0.3)
                mask = Image.new("L", card.size, 0)
                _rounded_rect(ImageDraw.Draw(mask), (0, 0, card.size[0] - 1, card.size[1] - 1), 3 * u, fill=255)
                img.paste(card, (int(margin), int(y)), mask)
            y += card_h + 4 * u
    if rng.random() < 0.4:
        _circle(draw, w - 12 * u, h - 26 * u, 7 * u, fill=accent)
    nav_y = h - 9 * u
    draw.line((0, h - 16 * u, w, h - 16 * u), fill=faint, width=max(1, round(0.3 * u)))
    for k in range(4):
        _rounded_rect(draw, (w * (k + 0.5) / 4 - 2.5 * u, nav_y - 2.5 * u, w * (k + 0.5) / 4 + 2.5 * u, nav_y + 2.5 * u),
                      1.2 * u, fill=accent if k == 0 else faint)
    return img


def _screen_chat(rng, w, h, dark):
    """A messenger: speech bubbles left and right, an input field at the bottom."""
    u = min(w, h) / 100
    bg = _gray(_uniform(rng, 10, 30)) if dark else _gray(_uniform(rng, 235, 252))
    text = _gray(200) if dark else _gray(60)
    theirs = _gray(55) if dark else _gray(_uniform(rng, 210, 228))
    mine = _hue_color(rng, (0.5, 0.9), (0.55, 0.9), hue=_pick(rng, (0.58, 0.35, 0.8, 0.08)))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img, "RGBA")
    y = _status_bar(draw, w, u, text, rng)
    draw.rectangle((0, y, w, y + 12 * u), fill=_mix(bg, text, 0.08))
    _circle(draw, 10 * u, y + 6 * u, 4 * u, fill=_hue_color(rng, (0.3, 0.7), (0.6, 0.9)))
    _rounded_rect(draw, (17 * u, y + 4.5 * u, 45 * u, y + 7.5 * u), 1.5 * u, fill=text)
    y += 17 * u
    while y < h - 30 * u:
        is_mine = rng.random() < 0.5
        bubble_w = _uniform(rng, 0.35, 0.7) * w
        lines = int(rng.integers(1, 4))
        bubble_h = (lines * 4.5 + 3.5) * u
        x0 = w - 5 * u - bubble_w if is_mine else 5 * u
        _rounded_rect(draw, (x0, y, x0 + bubble_w, y + bubble_h), 4 * u, fill=mine if is_mine else theirs)
        ink = (255, 255, 255, 220) if is_mine else _with_alpha(text, 200)
        _text_lines(draw, rng, x0 + 4 * u, y + 2.5 * u, bubble_w - 8 * u, lines, 4.5 * u, 2 * u, ink)
        y += bubble_h + _uniform(rng, 2.5, 6) * u
    _rounded_rect(draw, (4 * u, h - 16 * u, w - 16 * u, h - 7 * u), 4.5 * u, outline=_mix(bg, text, 0.4), width=max(1, round(0.5 * u)))
    _circle(draw, w - 9 * u, h - 11.5 * u, 4.5 * u, fill=mine)
    return img


def _screen_lock(rng, w, h, dark):
    """Lock screen: photo wallpaper, a big clock, notification cards."""
    u = min(w, h) / 100
    img = _landscape(rng, w, h, dark) if rng.random() < 0.6 else _wallpaper(rng, w, h, dark)
    draw = ImageDraw.Draw(img, "RGBA")
    fg = (255, 255, 255)
    _status_bar(draw, w, u, fg, rng)
    digit_w, digit_h = 12 * u, 22 * u
    clock_w = digit_w * 1.35 * 4 + digit_w * 0.6
    x = (w - clock_w) / 2
    y = max(16 * u, 0.12 * h)
    hour, minute = int(rng.integers(24)), int(rng.integers(60))
    _digits(draw, divmod(hour, 10) + divmod(minute, 10), x, y, digit_w, digit_h, fg, colon_after=1)
    _rounded_rect(draw, (w / 2 - 18 * u, y + digit_h + 5 * u, w / 2 + 18 * u, y + digit_h + 8 * u), 1.5 * u, fill=_with_alpha(fg, 220))
    y += digit_h + 16 * u
    for _ in range(int(rng.integers(0, 3))):
        if y + 18 * u > h - 20 * u:
            break
        _rounded_rect(draw, (5 * u, y, w - 5 * u, y + 16 * u), 4 * u, fill=(255, 255, 255, 150))
        _rounded_rect(draw, (9 * u, y + 4 * u, 17 * u, y + 12 * u), 2 * u, fill=_hue_color(rng, (0.5, 0.9), (0.6, 1.0)))
        _text_lines(draw, rng, 21 * u, y + 4 * u, w - 30 * u, 2, 5 * u, 2.2 * u, (40, 40, 40, 200))
        y += 19 * u
    for cx in (12 * u, w - 12 * u):
        _circle(draw, cx, h - 14 * u, 6 * u, fill=(0, 0, 0, 90))
    _rounded_rect(draw, (w / 2 - 17 * u, h - 4 * u, w / 2 + 17 * u, h - 2.8 * u), u, fill=fg)
    return img


def _screen_desktop(rng, w, h, dark):
    """Computer desktop: wallpaper, a few windows, a task bar. For monitors, laptops, tablets."""
    u = min(w, h) / 100
    img = _wallpaper(rng, w, h, dark) if rng.random() < 0.5 else _landscape(rng, w, h, dark)
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(1, 4))):
        ww, wh = _uniform(rng, 0.3, 0.6) * w, _uniform(rng, 0.35, 0.7) * h
        x0, y0 = rng.random() * (w - ww), rng.random() * (h * 0.88 - wh)
        body = _gray(40) if rng.random() < 0.3 else _gray(245)
        ink = _mix(body, _gray(128), 0.6)
        _rounded_rect(draw, (x0, y0, x0 + ww, y0 + wh), 2 * u, fill=body)
        draw.rectangle((x0, y0 + 7 * u, x0 + ww, y0 + 7.3 * u), fill=ink)
        for k, dot in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
            _circle(draw, x0 + (4 + 4 * k) * u, y0 + 3.5 * u, 1.3 * u, fill=dot)
        _text_lines(draw, rng, x0 + 4 * u, y0 + 11 * u, ww - 8 * u, max(1, int((wh - 14 * u) / (5 * u))), 5 * u, 2 * u, ink)
    bar_h = 8 * u
    draw.rectangle((0, h - bar_h, w, h), fill=(20, 20, 25, 190))
    for k in range(int(rng.integers(4, 9))):
        x = w / 2 + (k - 4) * 7 * u
        _rounded_rect(draw, (x, h - bar_h + 1.5 * u, x + 5 * u, h - 1.5 * u), u, fill=_hue_color(rng, (0.4, 0.9), (0.6, 1.0)))
    return img


def _screen_video(rng, w, h, dark):
    """A paused video: picture plus a progress bar and play button."""
    u = min(w, h) / 100
    img = _landscape(rng, w, h, dark)
    draw = ImageDraw.Draw(img, "RGBA")
    draw.rectangle((0, h - 12 * u, w, h), fill=(0, 0, 0, 140))
    progress = _uniform(rng, 0.1, 0.9)
    draw.rectangle((4 * u, h - 7 * u, w - 4 * u, h - 6 * u), fill=(255, 255, 255, 120))
    draw.rectangle((4 * u, h - 7 * u, 4 * u + progress * (w - 8 * u), h - 6 * u), fill=(230, 30, 30))
    cx, cy = w / 2, h / 2
    _circle(draw, cx, cy, 9 * u, fill=(0, 0, 0, 120))
    draw.polygon([(cx - 3 * u, cy - 5 * u), (cx - 3 * u, cy + 5 * u), (cx + 5 * u, cy)], fill=(255, 255, 255))
    return img


_PHONE_SCREENS = (_screen_icons, _screen_app, _screen_chat, _screen_lock)
_COMPUTER_SCREENS = (_screen_desktop, _screen_video, _screen_icons)


def _glare(rng, screen):
    """A soft reflection band or spot: a nuisance that must not be read as a scratch."""
    w, h = screen.size
    xs, ys = _unit_grid(w, h)
    strength = _uniform(rng, 0.08, 0.3)
    if rng.random() < 0.6:
        angle = _uniform(rng, 0, math.pi)
        t = xs * math.cos(angle) * (w / h) + ys * math.sin(angle) - _uniform(rng, -0.6, 0.6)
        width = _uniform(rng, 0.08, 0.35)
        light = 1.0 / (1.0 + (t / width) ** 2) ** 2
    else:
        cx, cy, radius = _uniform(rng, -0.6, 0.6), _uniform(rng, -0.7, 0.7), _uniform(rng, 0.2, 0.6)
        light = 1.0 / (1.0 + (((xs - cx) * (w / h)) ** 2 + (ys - cy) ** 2) / radius ** 2) ** 2
    a = np.asarray(screen, np.float32)
    a += (255.0 - a) * (strength * light)[..., None]
    return _to_image(a)


def _dust(rng, screen):
    """A few specks: small, round, unlike a scratch's thin line."""
    w, h = screen.size
    draw = ImageDraw.Draw(screen, "RGBA")
    for _ in range(int(rng.integers(2, 9))):
        _circle(draw, rng.random() * w, rng.random() * h, max(1.0, 0.006 * w),
                fill=(230, 230, 230, int(rng.integers(60, 160))))
    return screen


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


# --------------------------------------------------------------------------- objects

def _phone_front(rng, height, dark, screen_fx=None):
    """Front of a phone: metal rim, dark bezel, bright UI screen, notch / punch hole / home button."""
    aspect = _uniform(rng, 1.95, 2.2)
    h = int(round(height))
    w = int(round(height / aspect))
    sprite = _Sprite(w, h)
    radius = w * _uniform(rng, 0.1, 0.16)
    rim = _jitter(rng, _pick(rng, _RIM_COLORS), 12)
    bezel = _gray(_uniform(rng, 5, 30))
    rim_w = max(1.0, w * 0.015)
    sprite.shape("rounded_rect", (0, 0, w - 1, h - 1), radius, fill=rim)
    _rounded_rect(sprite.draw, (rim_w, rim_w, w - 1 - rim_w, h - 1 - rim_w), radius - rim_w, fill=bezel)
    variant = _pick(rng, ("notch", "punch", "punch", "home", "plain", "drop"))
    if variant == "home":
        side, top = w * 0.055, h * _uniform(rng, 0.1, 0.13)
        screen_radius = w * 0.01
    else:
        side = top = rim_w + w * _uniform(rng, 0.025, 0.045)
        screen_radius = max(0.0, radius - side)
    sx0, sy0 = side, top
    sw, sh = int(round(w - 2 * side)), int(round(h - 2 * top))
    screen = _pick(rng, _PHONE_SCREENS)(rng, sw, sh, dark)
    if screen_fx is not None:
        screen = screen_fx(screen)
    screen_mask = Image.new("L", (sw, sh), 0)
    _rounded_rect(ImageDraw.Draw(screen_mask), (0, 0, sw - 1, sh - 1), screen_radius, fill=255)
    sprite.paste(screen, (sx0, sy0), screen_mask)
    draw = sprite.draw
    lens = (20, 22, 35)
    if variant == "home":
        _rounded_rect(draw, (w / 2 - 0.12 * w, top * 0.45, w / 2 + 0.12 * w, top * 0.45 + 0.02 * w), 0.01 * w, fill=_gray(55))
        _circle(draw, w / 2 - 0.2 * w, top * 0.5, 0.022 * w, fill=lens)
        _circle(draw, w / 2, h - top / 2, min(0.075 * w, top * 0.33), fill=bezel, outline=_gray(90), width=max(1, round(0.008 * w)))
    elif variant == "notch":
        notch_w = sw * _uniform(rng, 0.35, 0.5)
        notch_h = h * _uniform(rng, 0.025, 0.035)
        _rounded_rect(draw, (w / 2 - notch_w / 2, sy0 - notch_h, w / 2 + notch_w / 2, sy0 + notch_h), notch_h * 0.8, fill=bezel)
        _circle(draw, w / 2 + notch_w * 0.25, sy0 + notch_h * 0.45, notch_h * 0.3, fill=lens)
    elif variant == "punch":
        cx = w / 2 if rng.random() < 0.7 else sx0 + sw * 0.1
        _circle(draw, cx, sy0 + 0.06 * sw, 0.03 * w, fill=(5, 5, 8))
    elif variant == "drop":
        _circle(draw, w / 2, sy0, 0.045 * w, fill=bezel)
        _circle(draw, w / 2, sy0 + 0.01 * w, 0.02 * w, fill=lens)
    return sprite.image()


def _lens(draw, cx, cy, r, ring):
    """Camera lens: metal ring, black barrel, tinted glass, a specular highlight."""
    _circle(draw, cx, cy, r, fill=ring)
    _circle(draw, cx, cy, r * 0.8, fill=(12, 12, 15))
    _circle(draw, cx, cy, r * 0.55, fill=(28, 32, 58))
    _circle(draw, cx, cy, r * 0.28, fill=(6, 6, 10))
    _circle(draw, cx - r * 0.25, cy - r * 0.25, r * 0.12, fill=(225, 230, 240))


# Lens centres and radii inside a unit square island, for 1-4 lenses, plus a flash spot.
_SQUARE_LAYOUTS = {
    1: ([(0.5, 0.5, 0.3)], (0.84, 0.16)),
    2: ([(0.32, 0.28, 0.2), (0.32, 0.72, 0.2)], (0.75, 0.28)),
    3: ([(0.29, 0.27, 0.19), (0.29, 0.73, 0.19), (0.72, 0.5, 0.19)], (0.75, 0.14)),
    4: ([(0.28, 0.28, 0.17), (0.72, 0.28, 0.17), (0.28, 0.72, 0.17), (0.72, 0.72, 0.17)], None),
}


def _phone_back(rng, height):
    """Back of a phone: coloured casing, camera island with 1-4 lenses and a flash, a logo."""
    aspect = _uniform(rng, 1.95, 2.2)
    h = int(round(height))
    w = int(round(height / aspect))
    base = _jitter(rng, _pick(rng, _BACK_COLORS), 14)
    finish = _pick(rng, ("matte", "metallic", "glossy"))
    spread = _uniform(rng, 0.04, 0.12) if finish == "matte" else _uniform(rng, 0.1, 0.22)
    panel = _linear_gradient(w, h, _shade(base, 1 + spread), _shade(base, 1 - spread), _uniform(rng, 0, 2 * math.pi))
    if finish == "metallic":  # brushed metal: faint streaks along one axis
        panel += rng.normal(0, _uniform(rng, 2, 6), (1, w, 1)).astype(np.float32)
    elif finish == "glossy":
        xs, ys = _unit_grid(w, h)
        t = (xs * (w / h) + ys - _uniform(rng, -0.8, 0.5)) / _uniform(rng, 0.1, 0.3)
        panel += (70.0 / (1.0 + t * t))[..., None]
    sprite = _Sprite(w, h)
    radius = w * _uniform(rng, 0.1, 0.16)
    sprite.shape("rounded_rect", (0, 0, w - 1, h - 1), radius, fill=_shade(base, 0.7))
    panel_mask = Image.new("L", (w, h), 0)
    edge = max(1.0, 0.012 * w)
    _rounded_rect(ImageDraw.Draw(panel_mask), (edge, edge, w - 1 - edge, h - 1 - edge), radius - edge, fill=255)
    sprite.paste(_to_image(panel), (0, 0), panel_mask)
    draw = sprite.draw

    lum = _luminance(base)
    ring = _gray(_uniform(rng, 140, 215)) if rng.random() < 0.6 else _gray(45)
    flash_color = (240, 232, 195)
    style = _pick(rng, ("square", "square", "round", "pill", "bar", "bare"))
    margin = w * _uniform(rng, 0.06, 0.09)
    if style in ("square", "round"):
        s = w * _uniform(rng, 0.36, 0.48)
        x0 = margin if rng.random() < 0.7 else (w - s) / 2
        y0 = margin
        island = _gray(_uniform(rng, 15, 40)) if rng.random() < 0.5 else _shade(base, 0.85 if lum > 90 else 1.35)
        if style == "square":
            _rounded_rect(draw, (x0, y0, x0 + s, y0 + s), s * 0.24, fill=island, outline=_shade(island, 0.8), width=max(1, round(0.01 * w)))
        else:
            _circle(draw, x0 + s / 2, y0 + s / 2, s / 2, fill=island, outline=_shade(island, 0.8), width=max(1, round(0.01 * w)))
        lenses, flash = _SQUARE_LAYOUTS[int(rng.integers(1, 5))]
        for lx, ly, lr in lenses:
            _lens(draw, x0 + lx * s, y0 + ly * s, lr * s, ring)
        if flash is None:
            _circle(draw, x0 + s + 0.07 * w, y0 + 0.15 * s, 0.045 * w, fill=flash_color)
        else:
            _circle(draw, x0 + flash[0] * s, y0 + flash[1] * s, 0.06 * s, fill=flash_color)
    elif style == "pill":
        count = int(rng.integers(2, 4))
        r = w * 0.08
        x0, y0 = margin, margin
        pill_h = count * 2.4 * r + 0.6 * r
        _rounded_rect(draw, (x0, y0, x0 + 2.8 * r, y0 + pill_h), 1.4 * r, fill=_gray(_uniform(rng, 15, 45)))
        for k in range(count):
            _lens(draw, x0 + 1.4 * r, y0 + 1.5 * r + k * 2.4 * r, r, ring)
        _circle(draw, x0 + 4 * r, y0 + 1.5 * r, 0.4 * r, fill=flash_color)
    elif style == "bar":
        count = int(rng.integers(2, 4))
        bar_h = w * _uniform(rng, 0.16, 0.2)
        y0 = h * _uniform(rng, 0.08, 0.12)
        _rounded_rect(draw, (edge, y0, w - edge, y0 + bar_h), bar_h * 0.5, fill=_gray(_uniform(rng, 10, 40)))
        r = bar_h * 0.36
        for k in range(count):
            _lens(draw, w * 0.2 + k * 2.5 * r, y0 + bar_h / 2, r, ring)
        _circle(draw, w * 0.8, y0 + bar_h / 2, 0.3 * r, fill=flash_color)
    else:  # lenses straight on the casing
        count = int(rng.integers(1, 4))
        r = w * _uniform(rng, 0.07, 0.1)
        cx = margin + r if rng.random() < 0.6 else w / 2
        for k in range(count):
            _lens(draw, cx, margin + r + k * 2.3 * r, r, ring)
        _circle(draw, cx + 2 * r, margin + r, 0.35 * r, fill=flash_color)

    logo = _shade(base, 0.75) if lum > 140 else _shade(base, 1.5) if lum > 40 else _gray(90)
    if rng.random() < 0.3:
        logo = (200, 200, 205)
    lx, ly, ls = w / 2, h * _uniform(rng, 0.42, 0.55), w * _uniform(rng, 0.08, 0.12)
    shape = _pick(rng, ("bitten", "ring", "diamond", "wordmark", "triangle"))
    if shape == "bitten":
        _circle(draw, lx, ly, ls, fill=logo)
        _circle(draw, lx + ls * 1.05, ly - ls * 0.2, ls * 0.4, fill=tuple(int(v) for v in panel[int(ly), min(w - 1, int(lx + ls))]))
        _circle(draw, lx + ls * 0.15, ly - ls * 1.25, ls * 0.25, fill=logo)
    elif shape == "ring":
        _circle(draw, lx, ly, ls, outline=logo, width=max(1, round(ls * 0.25)))
    elif shape == "diamond":
        draw.polygon([(lx, ly - ls), (lx + ls * 0.8, ly), (lx, ly + ls), (lx - ls * 0.8, ly)], fill=logo)
    elif shape == "triangle":
        draw.polygon([(lx, ly - ls), (lx + ls, ly + ls * 0.8), (lx - ls, ly + ls * 0.8)], fill=logo)
    else:
        letters = int(rng.integers(3, 7))
        total = letters * ls * 0.55
        for k in range(letters):
            x = lx - total / 2 + k * ls * 0.55
            _rounded_rect(draw, (x, ly - ls * 0.3, x + ls * 0.4, ly + ls * 0.3), ls * 0.1, fill=logo)
    if rng.random() < 0.5:  # regulatory small print near the bottom
        _text_lines(draw, rng, w * 0.3, h * 0.9, w * 0.4, 2, 0.025 * w, 0.012 * w, _mix(base, logo, 0.6))
    return sprite.image()


def _framed_screen(sprite, rng, box, radius, content_fns, dark):
    """Paste generated screen content into ``box`` of a sprite, with rounded corners."""
    x0, y0, x1, y1 = box
    sw, sh = max(2, int(round(x1 - x0))), max(2, int(round(y1 - y0)))
    screen = _pick(rng, content_fns)(rng, sw, sh, dark)
    mask = Image.new("L", (sw, sh), 0)
    _rounded_rect(ImageDraw.Draw(mask), (0, 0, sw - 1, sh - 1), radius, fill=255)
    sprite.paste(screen, (x0, y0), mask)


def _tablet(rng, long_side):
    """Tablet: wider aspect than a phone and a thick bezel, often in landscape."""
    aspect = _uniform(rng, 1.3, 1.5)
    landscape = rng.random() < 0.65
    short = long_side / aspect
    w, h = (long_side, short) if landscape else (short, long_side)
    sprite = _Sprite(w, h)
    body = _pick(rng, (_gray(20), _gray(235), (200, 200, 205), (60, 62, 68)))
    bezel = body if rng.random() < 0.5 else _gray(15)
    radius = short * _uniform(rng, 0.05, 0.09)
    sprite.shape("rounded_rect", (0, 0, sprite.w - 1, sprite.h - 1), radius, fill=_shade(body, 0.8))
    _rounded_rect(sprite.draw, (2, 2, sprite.w - 3, sprite.h - 3), radius, fill=bezel)
    b = short * _uniform(rng, 0.06, 0.1)
    _framed_screen(sprite, rng, (b, b, w - b, h - b), short * 0.01,
                   (_screen_icons, _screen_desktop, _screen_app, _screen_video), rng.random() < 0.3)
    cam = (w / 2, b / 2) if not landscape else (b / 2, h / 2)
    _circle(sprite.draw, cam[0], cam[1], b * 0.12, fill=(25, 28, 40))
    if rng.random() < 0.35:  # home button on the far bezel
        hb = (w / 2, h - b / 2) if not landscape else (w - b / 2, h / 2)
        _circle(sprite.draw, hb[0], hb[1], b * 0.32, outline=_shade(bezel, 0.7) if _luminance(bezel) > 100 else _gray(90), width=max(1, round(b * 0.05)))
    return sprite.image()


def _monitor(rng, long_side):
    """TV or computer monitor: a wide screen on a stand."""
    w = long_side
    screen_h = w * _uniform(rng, 0.5, 0.63)
    frame = _pick(rng, (_gray(15), _gray(30), (190, 190, 195), _gray(235)))
    chin = w * _uniform(rng, 0.05, 0.09) if rng.random() < 0.3 else 0.0
    stand_kind = _pick(rng, ("neck", "feet", "neck"))
    stand_h = w * _uniform(rng, 0.1, 0.16) if stand_kind == "neck" else w * _uniform(rng, 0.04, 0.07)
    h = screen_h + chin + stand_h
    sprite = _Sprite(w, h)
    stand = _shade(frame, 0.9) if _luminance(frame) > 60 else _gray(60)
    panel_bottom = screen_h + chin
    if stand_kind == "neck":
        neck_w = w * _uniform(rng, 0.06, 0.12)
        sprite.shape("rectangle", (w / 2 - neck_w / 2, panel_bottom - 2, w / 2 + neck_w / 2, h - w * 0.02), fill=stand)
        base_w = w * _uniform(rng, 0.28, 0.42)
        sprite.shape("ellipse", (w / 2 - base_w / 2, h - w * 0.04, w / 2 + base_w / 2, h - 1), fill=_shade(stand, 0.85))
    else:
        inset = _uniform(rng, 0.08, 0.2)
        for fx in (inset, 1 - inset):
            sprite.shape("polygon", [(w * fx - w * 0.02, panel_bottom - 2), (w * fx + w * 0.02, panel_bottom - 2),
                                     (w * fx + w * 0.05, h - 1), (w * fx - w * 0.05, h - 1)], fill=stand)
    sprite.shape("rounded_rect", (0, 0, w - 1, panel_bottom), w * 0.012, fill=frame)
    bezel = w * _uniform(rng, 0.012, 0.03)
    _rounded_rect(sprite.draw, (bezel * 0.4, bezel * 0.4, w - bezel * 0.4, screen_h - bezel * 0.4), w * 0.008, fill=_gray(10))
    _framed_screen(sprite, rng, (bezel, bezel, w - bezel, screen_h - bezel), 0, _COMPUTER_SCREENS, rng.random() < 0.3)
    if chin:
        _circle(sprite.draw, w / 2, screen_h + chin / 2, chin * 0.18, fill=_shade(frame, 0.8))
    return sprite.image()


def _calculator(rng, long_side):
    """Calculator: small LCD display above a regular grid of keys."""
    h = long_side
    w = h / _uniform(rng, 1.45, 1.85)
    sprite = _Sprite(w, h)
    body = _jitter(rng, _pick(rng, _GADGET_COLORS), 10)
    sprite.shape("rounded_rect", (0, 0, sprite.w - 1, sprite.h - 1), w * _uniform(rng, 0.04, 0.12), fill=body)
    draw = sprite.draw
    m = w * 0.08
    top = h * 0.05
    if rng.random() < 0.5:  # solar cells
        for k in range(4):
            cw = (w * 0.4) / 4
            draw.rectangle((w - m - w * 0.4 + k * cw, top, w - m - w * 0.4 + (k + 1) * cw - 1, top + h * 0.04), fill=(60, 45, 40))
        top += h * 0.06
    disp_h = h * _uniform(rng, 0.12, 0.17)
    lcd = (170, 185, 160) if rng.random() < 0.6 else (25, 35, 30)
    ink = (30, 35, 30) if lcd[0] > 100 else (120, 240, 150)
    _rounded_rect(draw, (m, top, w - m, top + disp_h), w * 0.03, fill=lcd, outline=_shade(body, 0.6), width=max(1, round(w * 0.01)))
    count = int(rng.integers(3, 9))
    dw, dh = disp_h * 0.32, disp_h * 0.55
    _digits(draw, [int(v) for v in rng.integers(10, size=count)], w - m - w * 0.04 - count * dw * 1.35,
            top + disp_h * 0.22, dw, dh, ink)
    cols = int(rng.integers(4, 6))
    rows = int(rng.integers(5, 8))
    key_top = top + disp_h + h * 0.05
    gap = w * 0.035
    key_w = (w - 2 * m - (cols - 1) * gap) / cols
    key_h = (h - key_top - h * 0.05 - (rows - 1) * gap) / rows
    number_key = _gray(_uniform(rng, 200, 235)) if rng.random() < 0.5 else _gray(_uniform(rng, 40, 80))
    operator_key = _hue_color(rng, (0.6, 0.9), (0.8, 1.0), hue=_pick(rng, (0.08, 0.95, 0.55))) if rng.random() < 0.6 else _gray(120)
    function_key = _shade(number_key, 0.75) if _luminance(number_key) > 128 else _gray(120)
    for r in range(rows):
        for c in range(cols):
            x0 = m + c * (key_w + gap)
            y0 = key_top + r * (key_h + gap)
            color = operator_key if c == cols - 1 else function_key if r == 0 else number_key
            _rounded_rect(draw, (x0, y0, x0 + key_w, y0 + key_h), min(key_w, key_h) * 0.25, fill=color)
            legend = (30, 30, 30) if _luminance(color) > 128 else (235, 235, 235)
            cx, cy, s = x0 + key_w / 2, y0 + key_h / 2, min(key_w, key_h) * 0.18
            if c == cols - 1:
                draw.rectangle((cx - s, cy - s * 0.2, cx + s, cy + s * 0.2), fill=legend)
                draw.rectangle((cx - s * 0.2, cy - s, cx + s * 0.2, cy + s), fill=legend)
            else:
                draw.rectangle((cx - s * 0.4, cy - s, cx + s * 0.4, cy + s), fill=legend)
    return sprite.image()


def _laptop(rng, long_side):
    """Open laptop: a screen lid above a keyboard base drawn as a trapezoid."""
    w = long_side
    lid_w = w * _uniform(rng, 0.8, 0.9)
    lid_h = lid_w * _uniform(rng, 0.6, 0.66)
    base_h = w * _uniform(rng, 0.2, 0.28)
    h = lid_h + base_h
    sprite = _Sprite(w, h)
    shell = _jitter(rng, _pick(rng, ((195, 195, 200), (90, 92, 98), (30, 30, 32), (225, 215, 200))), 8)
    lx0 = (w - lid_w) / 2
    sprite.shape("rounded_rect", (lx0, 0, lx0 + lid_w, lid_h), lid_w * 0.025, fill=shell)
    bezel = lid_w * _uniform(rng, 0.025, 0.045)
    _rounded_rect(sprite.draw, (lx0 + bezel * 0.3, bezel * 0.3, lx0 + lid_w - bezel * 0.3, lid_h - bezel * 0.3), lid_w * 0.02, fill=_gray(12))
    _framed_screen(sprite, rng, (lx0 + bezel, bezel, lx0 + lid_w - bezel, lid_h - bezel * 0.8), 0, _COMPUTER_SCREENS, rng.random() < 0.3)
    _circle(sprite.draw, w / 2, bezel * 0.5, bezel * 0.15, fill=(40, 45, 60))
    base = [(lx0, lid_h), (lx0 + lid_w, lid_h), (w - 1, h - 1), (0, h - 1)]
    sprite.shape("polygon", base, fill=_shade(shell, 1.06))
    draw = sprite.draw
    draw.rectangle((lx0, lid_h - 1, lx0 + lid_w, lid_h + base_h * 0.04), fill=_shade(shell, 0.6))
    key = _gray(25) if _luminance(shell) > 60 else _gray(70)
    rows = 5
    kb_top, kb_bottom = lid_h + base_h * 0.1, lid_h + base_h * 0.62
    for r in range(rows):
        y0 = kb_top + (kb_bottom - kb_top) * r / rows
        y1 = kb_top + (kb_bottom - kb_top) * (r + 0.8) / rows
        t = (y0 - lid_h) / base_h  # how far down the trapezoid: rows widen towards the front
        left = lx0 * (1 - t) + w * 0.1 * t + lid_w * 0.06 * (1 - t)
        right = w - left
        keys = 13
        kw = (right - left) / keys
        for k in range(keys):
            draw.rectangle((left + k * kw + kw * 0.1, y0, left + (k + 1) * kw - kw * 0.1, y1), fill=key)
    pad_w = w * 0.22
    _rounded_rect(draw, (w / 2 - pad_w / 2, lid_h + base_h * 0.68, w / 2 + pad_w / 2, lid_h + base_h * 0.94), base_h * 0.04, fill=_shade(shell, 0.9))
    return sprite.image()


def _gamepad(rng, long_side):
    """Game controller: a body with two grips, d-pad, face buttons, thumbsticks."""
    w = long_side
    h = w * _uniform(rng, 0.58, 0.68)
    sprite = _Sprite(w, h)
    body = _jitter(rng, _pick(rng, _GADGET_COLORS), 10)
    dark_part = _gray(30) if _luminance(body) > 60 else _gray(70)
    sprite.shape("rounded_rect", (w * 0.14, 0, w * 0.36, h * 0.2), h * 0.06, fill=dark_part)  # shoulder buttons
    sprite.shape("rounded_rect", (w * 0.64, 0, w * 0.86, h * 0.2), h * 0.06, fill=dark_part)
    sprite.shape("ellipse", (0, h * 0.12, w * 0.42, h - 1), fill=body)
    sprite.shape("ellipse", (w * 0.58, h * 0.12, w - 1, h - 1), fill=body)
    sprite.shape("rounded_rect", (w * 0.12, h * 0.08, w * 0.88, h * 0.7), h * 0.25, fill=body)
    draw = sprite.draw
    cx, cy, arm, thick = w * 0.22, h * 0.38, w * 0.075, w * 0.035
    draw.rectangle((cx - arm, cy - thick / 2, cx + arm, cy + thick / 2), fill=dark_part)
    draw.rectangle((cx - thick / 2, cy - arm, cx + thick / 2, cy + arm), fill=dark_part)
    colored = rng.random() < 0.5
    palette = ((60, 180, 75), (220, 50, 50), (50, 100, 220), (240, 200, 40))
    bx, by, spacing, r = w * 0.78, h * 0.38, w * 0.055, w * 0.028
    for k, (dx, dy) in enumerate(((0, 1), (1, 0), (-1, 0), (0, -1))):
        _circle(draw, bx + dx * spacing, by + dy * spacing, r, fill=palette[k] if colored else dark_part)
    for sx in (0.37, 0.63):
        _circle(draw, w * sx, h * 0.6, w * 0.065, fill=_gray(20))
        _circle(draw, w * sx, h * 0.6, w * 0.048, fill=_gray(65), outline=_gray(40), width=max(1, round(w * 0.006)))
    for sx in (0.44, 0.56):
        _rounded_rect(draw, (w * sx - w * 0.02, h * 0.3, w * sx + w * 0.02, h * 0.34), h * 0.02, fill=dark_part)
    _circle(draw, w / 2, h * 0.45, w * 0.025, fill=_shade(body, 0.7) if _luminance(body) > 60 else _gray(120))
    return sprite.image()


def _handheld_console(rng, long_side):
    """Handheld console: a small landscape screen between two coloured controller halves."""
    w = long_side
    h = w * _uniform(rng, 0.4, 0.46)
    sprite = _Sprite(w, h)
    left, right = _pick(rng, (((230, 60, 50), (40, 160, 220)), ((70, 70, 75), (70, 70, 75)),
                              ((240, 200, 60), (150, 90, 200)), ((220, 220, 220), (220, 220, 220))))
    side_w = w * 0.17
    sprite.shape("rounded_rect", (0, 0, side_w * 1.5, h - 1), h * 0.3, fill=left)
    sprite.shape("rounded_rect", (w - side_w * 1.5, 0, w - 1, h - 1), h * 0.3, fill=right)
    sprite.shape("rectangle", (side_w, 0, w - side_w, h - 1), fill=_gray(25))
    _framed_screen(sprite, rng, (side_w + h * 0.06, h * 0.08, w - side_w - h * 0.06, h * 0.92), 0,
                   (_screen_video, _screen_icons), rng.random() < 0.4)
    draw = sprite.draw
    for cx, cy in ((side_w * 0.5, h * 0.3), (w - side_w * 0.5, h * 0.62)):
        _circle(draw, cx, cy, side_w * 0.25, fill=_gray(25))
        _circle(draw, cx, cy, side_w * 0.18, fill=_gray(60))
    for cx, cy in ((side_w * 0.5, h * 0.68), (w - side_w * 0.5, h * 0.32)):
        for dx, dy in ((0, 1), (1, 0), (-1, 0), (0, -1)):
            _circle(draw, cx + dx * side_w * 0.17, cy + dy * side_w * 0.17, side_w * 0.08, fill=_gray(30))
    return sprite.image()


def _hand_holding(rng, long_side):
    """A hand (skin-coloured blobs) holding a TV remote or a bank card."""
    size = long_side
    sprite = _Sprite(size, size)
    skin = _jitter(rng, _pick(rng, _SKIN_TONES), 10)
    crease = _shade(skin, 0.85)
    if rng.random() < 0.5:
        # remote: long and narrow, held around its lower half
        rw, rh = size * _uniform(rng, 0.16, 0.22), size * _uniform(rng, 0.7, 0.8)
        rx0, ry0 = size / 2 - rw / 2, size * 0.04
        sprite.shape("polygon", [(size * 0.38, size * 0.8), (size * 0.68, size * 0.8), (size * 0.74, size - 1), (size * 0.34, size - 1)], fill=skin)
        sprite.shape("ellipse", (size * 0.3, size * 0.5, size * 0.72, size * 0.9), fill=skin)
        body = _pick(rng, (_gray(25), _gray(45), _gray(190), _gray(230)))
        sprite.shape("rounded_rect", (rx0, ry0, rx0 + rw, ry0 + rh), rw * 0.3, fill=body)
        draw = sprite.draw
        button = _gray(200) if _luminance(body) < 100 else _gray(70)
        _circle(draw, rx0 + rw * 0.75, ry0 + rw * 0.4, rw * 0.1, fill=(210, 40, 40))
        for r in range(4):
            for c in range(3):
                bx, by = rx0 + rw * (0.22 + 0.28 * c), ry0 + rw * (0.9 + 0.32 * r)
                _rounded_rect(draw, (bx - rw * 0.09, by - rw * 0.07, bx + rw * 0.09, by + rw * 0.07), rw * 0.04, fill=button)
        cy = ry0 + rw * 2.6
        _circle(draw, rx0 + rw / 2, cy, rw * 0.33, outline=button, width=max(1, round(rw * 0.08)))
        _circle(draw, rx0 + rw / 2, cy, rw * 0.12, fill=button)
        for k, color in enumerate(((220, 50, 50), (50, 170, 70), (230, 200, 40), (50, 90, 210))):
            bx = rx0 + rw * (0.17 + 0.22 * k)
            draw.rectangle((bx - rw * 0.07, cy + rw * 0.5, bx + rw * 0.07, cy + rw * 0.6), fill=color)
        # fingers wrap around from the right, the thumb lies along the front from the left
        finger_w = size * 0.06
        for k in range(4):
            y = size * 0.56 + k * finger_w * 1.05
            sprite.shape("capsule", (rx0 + rw * 0.2, y), (size * 0.68, y + finger_w * 0.3), finger_w, fill=skin)
            sprite.draw.line(((rx0 + rw * 0.2, y + finger_w * 0.5), (size * 0.6, y + finger_w * 0.6)), fill=crease, width=max(1, round(size * 0.004)))
        sprite.shape("capsule", (size * 0.33, size * 0.8), (rx0 + rw * 0.55, size * 0.52), finger_w * 1.15, fill=skin)
    else:
        # card: landscape, held at its lower left corner
        cw = size * _uniform(rng, 0.58, 0.68)
        ch = cw / 1.586  # ID-1 card proportions
        cx0, cy0 = size * 0.3, size * 0.12
        sprite.shape("polygon", [(0, size * 0.75), (size * 0.25, size * 0.55), (size * 0.45, size - 1), (0, size - 1)], fill=skin)
        sprite.shape("ellipse", (size * 0.08, size * 0.38, size * 0.5, size * 0.8), fill=skin)
        for k in range(3):  # fingertips peeking from behind the card's left edge
            y = cy0 + ch * (0.25 + 0.25 * k)
            sprite.shape("capsule", (size * 0.2, y + size * 0.08), (cx0 + size * 0.02, y), size * 0.06, fill=skin)
        c0 = _hue_color(rng, (0.3, 0.9), (0.3, 0.9))
        card = _to_image(_linear_gradient(int(cw), int(ch), c0, _shade(c0, _uniform(rng, 0.5, 1.3)), _uniform(rng, 0, math.pi)))
        card_mask = Image.new("L", card.size, 0)
        _rounded_rect(ImageDraw.Draw(card_mask), (0, 0, card.size[0] - 1, card.size[1] - 1), cw * 0.05, fill=255)
        sprite.paste(card, (cx0, cy0), card_mask)
        sprite.mask.paste(card_mask, (int(round(cx0)), int(round(cy0))), card_mask)
        draw = sprite.draw
        _rounded_rect(draw, (cx0 + cw * 0.1, cy0 + ch * 0.32, cx0 + cw * 0.24, cy0 + ch * 0.52), cw * 0.015, fill=(215, 185, 110))
        ink = (255, 255, 255, 210) if _luminance(c0) < 150 else (30, 30, 30, 210)
        for g in range(4):
            gx = cx0 + cw * (0.1 + 0.2 * g)
            _rounded_rect(draw, (gx, cy0 + ch * 0.62, gx + cw * 0.16, cy0 + ch * 0.68), ch * 0.02, fill=ink)
        _rounded_rect(draw, (cx0 + cw * 0.1, cy0 + ch * 0.78, cx0 + cw * 0.45, cy0 + ch * 0.83), ch * 0.02, fill=ink)
        _circle(draw, cx0 + cw * 0.78, cy0 + ch * 0.8, ch * 0.09, fill=(235, 60, 40))
        _circle(draw, cx0 + cw * 0.86, cy0 + ch * 0.8, ch * 0.09, fill=(250, 170, 30, 200))
        sprite.shape("capsule", (size * 0.22, size * 0.62), (cx0 + cw * 0.18, cy0 + ch * 0.85), size * 0.075, fill=skin)
    return sprite.image()


_LOOKALIKES = (_tablet, _monitor, _calculator, _laptop, _gamepad, _handheld_console, _hand_holding)


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
    for (x, y), (u, v) in zip(dst, src):
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
        from tqdm import tqdm  # optional at import time; only needed when showing progress

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
