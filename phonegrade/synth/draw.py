"""Drawing helpers shared by the scene parts: colours and palettes, shapes, gradients, noise, sprites, digits
and text lines."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

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
    return tuple(_clamp8(x + (y - x) * t) for x, y in zip(a, b, strict=True))


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


