"""Phones: the front (rim, bezel, screen, notch) and the back (camera module, logo, casing)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .draw import (
    _BACK_COLORS,
    _RIM_COLORS,
    _circle,
    _gray,
    _jitter,
    _linear_gradient,
    _luminance,
    _mix,
    _pick,
    _rounded_rect,
    _shade,
    _Sprite,
    _text_lines,
    _to_image,
    _uniform,
    _unit_grid,
)
from .screens import _PHONE_SCREENS

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

    _camera_island(rng, draw, w, h, base, edge)
    _logo(rng, draw, w, h, base, panel)
    return sprite.image()


def _camera_island(rng, draw, w, h, base, edge):
    """A phone back's cameras and flash: on a square or round island, a pill, a bar, or straight on the casing."""
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


def _logo(rng, draw, w, h, base, panel):
    """A phone back's logo (and sometimes regulatory small print), in a shade that shows on the casing."""
    lum = _luminance(base)
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


