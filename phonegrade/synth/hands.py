"""A hand holding a drawn phone: a palm and forearm behind it, fingers wrapped round one edge, a thumb over the other.

People photograph their own phones in their hand, front or back; a model that only ever saw phones lying on a desk
calls those photos something else.
"""

from __future__ import annotations

from .draw import _SKIN_TONES, _jitter, _pick, _shade, _Sprite, _uniform


def _in_hand(rng, long_side, draw_phone):
    """``draw_phone(rng, height)`` drawn in a hand, as one RGBA sprite whose longer side is ``long_side``.

    The phone keeps most of the sprite's height, so it stays the main object of the photo.
    """
    size = long_side
    phone = draw_phone(rng, size * _uniform(rng, 0.72, 0.84))
    w, h = phone.size
    x0 = size / 2 - w / 2 + _uniform(rng, -0.05, 0.05) * size
    y0 = size * _uniform(rng, 0.02, 0.06)
    x1 = x0 + w
    skin = _jitter(rng, _pick(rng, _SKIN_TONES), 10)
    shadow = _shade(skin, 0.82)
    sprite = _Sprite(size, size)
    # Palm and forearm lie behind the phone's lower half and leave the frame at the bottom.
    palm_cx, palm_cy = (x0 + x1) / 2, y0 + h * _uniform(rng, 0.72, 0.82)
    sprite.shape("ellipse", (palm_cx - w * 0.62, palm_cy - h * 0.2, palm_cx + w * 0.62, palm_cy + h * 0.24), fill=skin)
    sprite.shape("polygon", [(palm_cx - w * 0.45, palm_cy), (palm_cx + w * 0.5, palm_cy),
                             (palm_cx + w * 0.42, size - 1), (palm_cx - w * 0.38, size - 1)], fill=skin)
    alpha = phone.getchannel("A")
    sprite.paste(phone.convert("RGB"), (x0, y0), alpha)
    sprite.mask.paste(alpha, (int(round(x0)), int(round(y0))), alpha)
    # Fingers: from the knuckles outside one long edge to their tips over the phone; a right or a left hand.
    left_hand = rng.random() < 0.35
    finger_w = w * _uniform(rng, 0.17, 0.24)
    fingers = int(rng.integers(2, 5))
    top = y0 + h * _uniform(rng, 0.4, 0.6)
    for k in range(fingers):
        y = top + k * finger_w * 1.08
        outside = x1 + w * 0.1 if not left_hand else x0 - w * 0.1
        tip = x1 - w * _uniform(rng, 0.04, 0.14) if not left_hand else x0 + w * _uniform(rng, 0.04, 0.14)
        sprite.shape("capsule", (outside, y + finger_w * 0.2), (tip, y), finger_w, fill=skin if k % 2 == 0 else _jitter(rng, skin, 6))
        sprite.draw.line(((outside, y + finger_w * 0.55), (tip + (w * 0.03 if not left_hand else -w * 0.03), y + finger_w * 0.4)),
                         fill=shadow, width=max(1, round(finger_w * 0.06)))
    # Thumb: from the base of the palm up along the other edge, partly over the phone.
    thumb_w = finger_w * 1.2
    base_x = x0 - w * 0.12 if not left_hand else x1 + w * 0.12
    tip_x = x0 + w * _uniform(rng, 0.02, 0.2) if not left_hand else x1 - w * _uniform(rng, 0.02, 0.2)
    sprite.shape("capsule", (base_x, y0 + h * 0.95), (tip_x, y0 + h * _uniform(rng, 0.55, 0.72)), thumb_w, fill=skin)
    return sprite.image()
