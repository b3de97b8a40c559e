import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from phonegrade.errors import ImageLoadError
from phonegrade.quality import MIN_SHARPNESS, MIN_SHORT_SIDE, measure_quality


def sharp_photo(width: int = 640, height: int = 480, square: int = 16) -> Image.Image:
    """A mid-grey checkerboard with dark text on it: crisp edges, nothing blown out, nothing black."""
    y, x = np.mgrid[:height, :width]
    board = np.where((x // square + y // square) % 2, 90, 170).astype(np.uint8)
    image = Image.fromarray(np.stack([board] * 3, axis=-1))
    draw = ImageDraw.Draw(image)
    for row in range(5):
        draw.text((width // 8, height // 8 + row * height // 6), "phonegrade sharp text 0123456789", fill=(10, 10, 10))
    return image


def scaled(image: Image.Image, factor: float) -> Image.Image:
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) * factor, 0, 255).astype(np.uint8))


def warned(report, word: str) -> bool:
    return any(word in warning for warning in report.warnings)


def test_a_sharp_well_exposed_photo_gets_no_warning():
    report = measure_quality(sharp_photo())
    assert report.warnings == () and not report.too_poor_to_grade


def test_a_blurred_copy_gets_the_blur_warning():
    report = measure_quality(sharp_photo().filter(ImageFilter.GaussianBlur(6)))
    assert list(report.warnings) == ["The photo is blurry: hold the phone still and tap the screen to focus."]
    assert not report.too_poor_to_grade
    assert report.sharpness < measure_quality(sharp_photo()).sharpness / 100


def test_sharpness_does_not_depend_on_resolution():
    small, large = measure_quality(sharp_photo(1024, 768, 16)), measure_quality(sharp_photo(2048, 1536, 32))
    assert large.sharpness == pytest.approx(small.sharpness, rel=0.1)


def test_a_black_photo_is_too_poor_to_grade():
    report = measure_quality(Image.new("RGB", (640, 480)))
    assert report.too_poor_to_grade
    assert len(report.warnings) == 1 and "almost entirely black" in report.warnings[0]  # not also "blurry"


def test_a_dark_photo_gets_the_dark_warning_not_the_blur_one_and_is_still_gradable():
    report = measure_quality(scaled(sharp_photo(), 0.1))
    assert report.sharpness < MIN_SHARPNESS  # darkness flattens edges: the blur measure cannot tell
    assert report.warnings == ("The photo is too dark: add light or move somewhere brighter.",)
    assert not report.too_poor_to_grade


def test_a_tiny_photo_is_too_small_to_grade():
    report = measure_quality(sharp_photo(40, 40, 4))
    assert report.too_poor_to_grade and report.short_side == 40
    assert warned(report, "40×40 pixels, too small to grade")


def test_a_small_photo_gets_a_warning_and_is_still_gradable():
    report = measure_quality(sharp_photo(MIN_SHORT_SIDE + 40, MIN_SHORT_SIDE - 1, 4))
    assert warned(report, "The photo is small") and not report.too_poor_to_grade


@pytest.mark.parametrize("photo", [
    lambda: Image.new("RGB", (640, 480), (255, 255, 255)),
    lambda: scaled(sharp_photo(), 3),
    # Warm light: red and green blow out while blue keeps detail, and that is glare too.
    lambda: Image.fromarray(np.clip(np.asarray(sharp_photo()) * np.array([3.0, 2.4, 1.0]), 0, 255).astype(np.uint8)),
], ids=["white", "overexposed", "overexposed-warm"])
def test_an_overexposed_photo_gets_the_glare_warning(photo):
    report = measure_quality(photo())
    assert warned(report, "glare or over-exposure") and not report.too_poor_to_grade
    assert report.glare > 0.9


def test_warnings_are_plain_sentences():
    photos = [Image.new("RGB", (640, 480)), sharp_photo(40, 40, 4), sharp_photo(300, 150, 4),
              scaled(sharp_photo(), 0.15), scaled(sharp_photo(), 3), sharp_photo().filter(ImageFilter.GaussianBlur(6))]
    warnings = [w for photo in photos for w in measure_quality(photo).warnings]
    assert len(warnings) == len(photos)
    for warning in warnings:
        assert warning[0].isupper() and warning.endswith(".") and len(warning) < 160
        assert not any(c in warning for c in "{}[]_=<>\n") and "None" not in warning


def test_to_dict_is_json_for_the_api():
    report = measure_quality(sharp_photo(300, 150, 4))
    data = json.loads(json.dumps(report.to_dict()))
    assert data == {"warnings": list(report.warnings), "sharpness": pytest.approx(report.sharpness, abs=0.01),
                    "glare": pytest.approx(report.glare, abs=1e-4),
                    "darkness": pytest.approx(report.darkness, abs=1e-4), "short_side": 150, "gradable": True}
    assert json.loads(json.dumps(measure_quality(Image.new("RGB", (40, 40))).to_dict()))["gradable"] is False


def test_an_exif_rotated_file_is_measured_upright():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored lying on its side: rotate 90° clockwise to view
    sharp_photo(150, 100, 4).save(buffer, "JPEG", quality=95, exif=exif)
    report = measure_quality(buffer.getvalue())
    assert warned(report, "(100×150 pixels)")


def test_a_transparent_rgba_photo_is_measured_on_white():
    rgba = Image.new("RGBA", (640, 480), (0, 0, 0, 0))  # black where it is transparent
    report = measure_quality(rgba)
    assert not report.too_poor_to_grade and warned(report, "glare")


def test_a_16_bit_photo_measures_like_its_8_bit_copy(tmp_path):
    grey = np.asarray(sharp_photo().convert("L"), dtype=np.uint16) * 257  # 0..255 → 0..65535
    Image.fromarray(grey).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    deep, shallow = measure_quality(tmp_path / "deep.png"), measure_quality(sharp_photo().convert("L"))
    assert deep.warnings == () == shallow.warnings
    assert deep.darkness == pytest.approx(shallow.darkness, abs=0.01)
    assert deep.sharpness == pytest.approx(shallow.sharpness, rel=0.05)


def test_an_unreadable_file_is_an_image_load_error():
    with pytest.raises(ImageLoadError, match="not a readable image"):
        measure_quality(b"not a photo")
