"""What a screen shows: wallpapers, app grids, chats, lock screens, desktops, videos; glare and dust on the glass."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .draw import (
    _circle,
    _digits,
    _gray,
    _hue_color,
    _linear_gradient,
    _mix,
    _pick,
    _rounded_rect,
    _text_lines,
    _to_image,
    _uniform,
    _unit_grid,
    _with_alpha,
)

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


