import concurrent.futures
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from phonegrade import PhoneGradeClassifier
from phonegrade.errors import ConfigError
from phonegrade.explain import explanation_png, heatmap, overlay
from phonegrade.models import ARCHS

from .conftest import input_sensitive

SIDE = {"task": "side", "labels": ["front", "back", "none"]}


def random_classifier(arch: str, members: int = 1, seed: int = 0, **preprocessing) -> PhoneGradeClassifier:
    torch.manual_seed(seed)
    return input_sensitive(PhoneGradeClassifier({**SIDE, "arch": arch, "image_size": 64, "members": members,
                                                 **preprocessing}))


def stripes_photo(width: int = 96, height: int = 80) -> Image.Image:
    """Gradients, a checkerboard and a white patch: something different everywhere."""
    y, x = np.mgrid[:height, :width]
    pixels = np.stack([(x * 2) % 256, (y * 3) % 256, ((x + y) // 8 % 2) * 200], axis=-1).astype(np.uint8)
    pixels[10:30, 50:80] = 255
    return Image.fromarray(pixels)


def snapshot(classifier: PhoneGradeClassifier) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in classifier.state_dict().items()}


def assert_untouched(classifier: PhoneGradeClassifier, before: dict[str, torch.Tensor]) -> None:
    """Same weights and BatchNorm statistics, no gradients left on the weights, still in eval mode, no hooks."""
    after = classifier.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[name], before[name]) for name in before)
    assert all(p.grad is None for p in classifier.parameters())
    assert not any(module.training for module in classifier.modules())
    assert not any(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                   for module in classifier.modules())


def predicted(classifier: PhoneGradeClassifier, photo: Image.Image) -> str:
    probabilities = classifier.predict([photo])[0]
    return max(probabilities, key=probabilities.get)


@pytest.mark.parametrize("arch", [*ARCHS, "timm:resnet18"])
def test_every_arch_gives_a_heatmap_at_the_photo_size_in_0_1_and_leaves_the_model_as_it_was(arch):
    classifier = random_classifier(arch)
    before = snapshot(classifier)
    heat, label = heatmap(classifier, stripes_photo(96, 80))
    assert heat.shape == (80, 96) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1
    assert heat.max() - heat.min() > 0.1  # not constant: some places count more than others
    assert label == predicted(classifier, stripes_photo(96, 80))
    assert_untouched(classifier, before)


def test_the_default_label_is_the_prediction_and_any_label_can_be_asked_for():
    classifier = random_classifier("wearnet")
    photo = stripes_photo()
    assert heatmap(classifier, photo)[1] == predicted(classifier, photo)
    maps = {label: heatmap(classifier, photo, label) for label in classifier.labels}
    assert all(explained == label for label, (_, explained) in maps.items())
    assert not np.allclose(maps["front"][0], maps["back"][0])
    with pytest.raises(ConfigError, match="unknown label 'cracked'.*front, back, none"):
        heatmap(classifier, photo, "cracked")


def test_an_ensemble_heatmap_is_the_mean_of_its_members_heatmaps():
    members = [random_classifier("wearnet", seed=seed) for seed in (1, 2)]
    ensemble = PhoneGradeClassifier.from_members(members)
    before = snapshot(ensemble)
    photo = stripes_photo()
    maps = [heatmap(member, photo, "back")[0] for member in members]
    assert not np.allclose(maps[0], maps[1], atol=0.05)  # members that disagree
    heat, label = heatmap(ensemble, photo, "back")
    mean = np.mean(maps, axis=0)
    assert label == "back"
    np.testing.assert_allclose(heat / heat.max(), mean / mean.max(), atol=1e-5)  # the same up to scale
    assert heatmap(ensemble, photo)[1] == predicted(ensemble, photo)
    assert_untouched(ensemble, before)


def square_photo(rng: np.random.Generator, corner: tuple[int, int] | None, size: int = 48) -> np.ndarray:
    """Grey noise; with a corner (row, column), a bright 12-pixel square there."""
    pixels = rng.integers(60, 140, (size, size, 3)).astype(np.uint8)
    if corner is not None:
        top, left = corner
        pixels[top:top + 12, left:left + 12] = 250
    return pixels


def random_corner(rng: np.random.Generator) -> tuple[int, int]:
    return tuple(int(i) for i in rng.integers(0, 36, 2))


@pytest.fixture(scope="module")
def square_detector() -> PhoneGradeClassifier:
    """A WearNet taught in a few steps that a bright square anywhere means "front" (the other labels: noise)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    classifier = PhoneGradeClassifier({**SIDE, "arch": "wearnet", "image_size": 48})
    optimizer = torch.optim.Adam(classifier.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # measured: this small net trains 7× faster on one thread than on two busy cores
    try:
        classifier.train()
        for _ in range(60):
            labels = rng.integers(0, 3, 16)
            photos = [Image.fromarray(square_photo(rng, random_corner(rng) if label == 0 else None))
                      for label in labels]
            loss = nn.functional.cross_entropy(classifier(classifier.preprocess(photos)), torch.as_tensor(labels))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    optimizer.zero_grad(set_to_none=True)
    return classifier.eval()


@pytest.mark.parametrize("corner", [(0, 0), (36, 36), (0, 36)])
def test_the_heatmap_of_a_planted_square_concentrates_on_the_square(square_detector, corner):
    photo = Image.fromarray(square_photo(np.random.default_rng(1), corner))
    assert square_detector.predict([photo])[0]["front"] > 0.9  # it learnt the square
    heat, label = heatmap(square_detector, photo)
    assert label == "front"
    top, left = corner
    row, column = np.unravel_index(heat.argmax(), heat.shape)
    assert top - 6 <= row < top + 18 and left - 6 <= column < left + 18  # the hottest place: on the square
    # Its quadrant is on average at least 1.5 times as hot as the other three.
    quadrants = {(y, x): heat[y:y + 24, x:x + 24].mean() for y in (0, 24) for x in (0, 24)}
    square_quadrant = quadrants.pop((top // 24 * 24, left // 24 * 24))
    assert square_quadrant > 1.5 * np.mean(list(quadrants.values()))


def test_heatmaps_from_several_threads_match_one_at_a_time(square_detector):
    rng = np.random.default_rng(2)
    photos = [Image.fromarray(square_photo(rng, random_corner(rng))) for _ in range(8)]
    before = snapshot(square_detector)
    alone = [heatmap(square_detector, photo)[0] for photo in photos]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda photo: heatmap(square_detector, photo)[0], photos * 3))
    for i, heat in enumerate(together):
        np.testing.assert_allclose(heat, alone[i % len(photos)], atol=1e-5)
    assert_untouched(square_detector, before)


def test_heatmap_works_inside_inference_mode(square_detector):
    photo = Image.fromarray(square_photo(np.random.default_rng(3), (0, 0)))
    with torch.inference_mode():
        heat, label = heatmap(square_detector, photo)
    np.testing.assert_allclose(heat, heatmap(square_detector, photo)[0], atol=1e-6)


def test_a_model_in_training_mode_is_refused_and_left_in_it():
    classifier = random_classifier("wearnet").train()
    with pytest.raises(ValueError, match="eval mode"):
        heatmap(classifier, stripes_photo())
    assert classifier.training


def test_with_a_centre_crop_the_heatmap_covers_only_what_the_model_saw():
    classifier = random_classifier("wearnet", crop_pct=0.5)
    heat, _ = heatmap(classifier, stripes_photo(160, 80))
    # Short side 80 → 128 px, centre 64 px: 40 of the photo's pixels, columns 60 to 100 and rows 20 to 60.
    outside = np.ones_like(heat, dtype=bool)
    outside[20:60, 60:100] = False
    assert heat[outside].max() == 0
    assert heat[~outside].max() > 0.5


def test_an_exif_rotated_photo_gets_an_upright_heatmap(square_detector):
    upright = Image.fromarray(square_photo(np.random.default_rng(4), (0, 36)))
    stored = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90° anticlockwise: viewers turn it clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(stored, "PNG", exif=exif)
    np.testing.assert_allclose(heatmap(square_detector, stored.getvalue())[0], heatmap(square_detector, upright)[0],
                               atol=1e-5)


def test_overlay_colours_the_hot_places_and_leaves_the_cold_ones_as_they_were():
    photo = Image.new("RGB", (40, 30), (128, 128, 128))
    heat = np.zeros((30, 40), dtype=np.float32)
    heat[:10, :10] = 1.0
    blended = np.asarray(overlay(photo, heat)).astype(int)
    assert (blended[20:, 20:] == 128).all()
    red, green, blue = blended[5, 5]
    assert red > 200 and green < 100 and blue < 100
    with pytest.raises(ValueError, match="heatmap is 40×30, the photo 50×30"):
        overlay(Image.new("RGB", (50, 30)), heat)


def test_explanation_png_is_a_png_of_the_photo_at_most_max_side_long(square_detector):
    photo = Image.fromarray(square_photo(np.random.default_rng(5), (36, 0))).resize((400, 200))
    png, label = explanation_png(square_detector, photo, max_side=100)
    shown = Image.open(io.BytesIO(png))
    assert shown.format == "PNG" and shown.size == (100, 50)
    assert label == heatmap(square_detector, photo)[1]
    assert explanation_png(square_detector, photo, label="none", max_side=100)[1] == "none"
