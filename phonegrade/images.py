"""Photos in, upright RGB images out: safe decoding of files, bytes and uploads, with clear errors.

Unreadable, truncated, huge or unsupported files raise `ImageLoadError` with a message that names no server path;
odd but valid ones (RGBA, CMYK, 16-bit, palette, EXIF-rotated, animated, HEIC) are converted.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageLoadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".avif", ".heic", ".heif")

try:  # iPhones shoot HEIC by default: pillow-heif (a dependency) teaches Pillow to read it
    from pillow_heif import register_heif_opener
except ImportError:  # without it, HEIC files are refused with a message saying so (`_unidentified`)
    HEIF_SUPPORTED = False
else:
    register_heif_opener()
    HEIF_SUPPORTED = True


# Phone photos are at most ~50 MP; anything larger is refused before it is decoded.
MAX_IMAGE_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# load_image refuses anything above the limit itself, so Pillow's warning for 1×–2× the limit adds nothing.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB: applies EXIF orientation, flattens transparency onto white, rescales 16-bit data."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        hi = array.max() if array.size else 0.0
        if hi > 255:  # 16-bit data
            array = array * (255.0 / 65535.0)
        elif image.mode == "F" and hi <= 1.0:  # float data in [0, 1]
            array = array * 255.0
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


# Major brands of HEIF containers (iPhone photos): Pillow has no decoder for them (the pillow-heif plugin does).
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")


def _unidentified(head: bytes) -> str:
    """Why Pillow found no decoder for a file, from its first bytes."""
    if not head:
        return "the file is empty"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        if HEIF_SUPPORTED:
            return "a damaged HEIC/HEIF photo"
        return "HEIC/HEIF photos need the pillow-heif package (pip install pillow-heif); or convert it to JPEG"
    return "unknown or unsupported file format"


def _reason(err: Exception) -> str:
    """A decoder error as a short reason that names no file (OSError messages often carry the path)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return f"{err.__class__.__name__}: {err}"


def load_image(source: str | os.PathLike | bytes | Image.Image, name: str | None = None,
               min_side: int | None = None) -> Image.Image:
    """Decode a path, raw bytes or PIL image into an upright RGB image, or raise ImageLoadError.

    Error messages start with `name` (default: the path, or "upload" for bytes and PIL images). With `min_side`,
    a JPEG is decoded at 1/2, 1/4 or 1/8 scale where both sides stay at least `min_side` pixels.
    """
    if name is None:
        name = "upload" if isinstance(source, (bytes, Image.Image)) else str(source)
    try:
        if isinstance(source, Image.Image):
            image = source
        else:
            fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
            with fp:
                try:
                    image = Image.open(fp)
                except UnidentifiedImageError:
                    fp.seek(0)
                    raise ImageLoadError(f"{name}: not a readable image ({_unidentified(fp.read(16))})") from None
                # Pillow only warns between 1× and 2× its limit; refuse everything above it before decoding.
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ImageLoadError(f"{name}: image is too large ({image.width}×{image.height} pixels; "
                                         f"the limit is {MAX_IMAGE_PIXELS:,})")
                if min_side and image.format == "JPEG":
                    # Scaling inside the JPEG decoder: a 12 MP photo for a 128 px model decodes several times faster.
                    image.draft(None, (min_side, min_side))
                # Image.open stands on the first frame: an animation is graded by it, its other frames are not read.
                image.load()
        if image.width < 1 or image.height < 1:
            raise ImageLoadError(f"{name}: image has no pixels")
        return to_rgb(image)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageLoadError(f"{name}: image is too large (the limit is {MAX_IMAGE_PIXELS:,} pixels)") from err
    except FileNotFoundError as err:
        raise ImageLoadError(f"{name}: no such file") from err
    except Exception as err:  # noqa: BLE001 - hostile files make decoders raise many types (OSError, TypeError, ...)
        raise ImageLoadError(f"{name}: not a readable image ({_reason(err)})") from err
