"""Near-duplicate photos: a perceptual hash that a photo and its re-encoded, resized or slightly edited copies
share, and groups of photos within a few bits of each other. Triage groups users' corrections by it, and training
keeps a correction of a validation photo's copy out of training."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance

from .images import load_image

# Bits (of 64) in which two difference hashes may differ and still be one photo: re-encoding, resizing and small
# changes of brightness or crop move a few; different photos differ in about half.
NEAR_DUPLICATE_BITS = 10


def difference_hash(image: Image.Image, size: int = 8) -> int:
    """A 64-bit perceptual hash (for size 8): whether each pixel of a (size + 1) × size greyscale copy is brighter
    than its left neighbour. Alike for a photo and its re-encoded, resized or slightly edited copies."""
    grey = np.asarray(image.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def near_duplicate_groups(hashes: list[int], max_bits: int = NEAR_DUPLICATE_BITS) -> list[int]:
    """For each hash the index of its group's first member: hashes within `max_bits` of each other, directly or
    through other members, share a group."""
    parent = list(range(len(hashes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            if (hashes[i] ^ hashes[j]).bit_count() <= max_bits:
                a, b = sorted((root(i), root(j)))
                parent[b] = a
    return [root(i) for i in range(len(hashes))]


def near_duplicate_of_any(digest: int, others: list[int], max_bits: int = NEAR_DUPLICATE_BITS) -> bool:
    """Whether `digest` is within `max_bits` of one of `others`."""
    return any((digest ^ other).bit_count() <= max_bits for other in others)


def varied_copy(photo: Image.Image, seed: int) -> Image.Image:
    """A near-duplicate as a repeated upload makes one: the photo resized by up to 10 %, brightened or darkened by
    up to 5 % and re-encoded as JPEG (to simulate repeated uploads in tests and benchmarks)."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.9, 1.1)
    copy = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    copy = ImageEnhance.Brightness(copy).enhance(rng.uniform(0.95, 1.05))
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=int(rng.integers(85, 96)))
    return load_image(buffer.getvalue())
