"""Look-alikes for the `none` class: tablets, monitors, calculators, laptops, gamepads, handheld consoles and
hands holding other things."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from .draw import (
    _GADGET_COLORS,
    _SKIN_TONES,
    _circle,
    _digits,
    _gray,
    _hue_color,
    _jitter,
    _linear_gradient,
    _luminance,
    _pick,
    _rounded_rect,
    _shade,
    _Sprite,
    _to_image,
    _uniform,
)
from .screens import (
    _COMPUTER_SCREENS,
    _screen_app,
    _screen_desktop,
    _screen_icons,
    _screen_video,
)


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


