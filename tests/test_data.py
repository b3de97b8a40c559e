import io
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2 as T

from phonegrade.data import PhotoDataset, Sample, imagefolder_samples, load_splits, stratified_split
from phonegrade.errors import ConfigError, DataError, ImageLoadError
from phonegrade.images import load_image
from phonegrade.transforms import Preprocessing, eval_transform


def _write(path, image, **save_args):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save_args)
    return path


def _folder_dataset(root, names=("Front", "BACK", "None"), per_class=10):
    rng = np.random.default_rng(0)
    for name in names:
        for i in range(per_class):
            pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            _write(root / name / f"{i}.png", Image.fromarray(pixels))
    return root


def test_stratified_split_keeps_class_proportions_and_is_reproducible():
    samples = [Sample(lambda: b"", label, str(i)) for i, label in enumerate([0] * 50 + [1] * 30 + [2] * 20)]
    train, val = stratified_split(samples, 0.2, seed=3)
    assert Counter(s.label for s in val) == {0: 10, 1: 6, 2: 4}
    assert len(train) == 80 and not {s.key for s in train} & {s.key for s in val}
    again = stratified_split(samples, 0.2, seed=3)[1]
    other = stratified_split(samples, 0.2, seed=4)[1]
    assert [s.key for s in again] == [s.key for s in val]
    assert [s.key for s in other] != [s.key for s in val]


def test_folder_without_split_is_split_80_20_with_aliases_resolved(tmp_path):
    splits = load_splits(_folder_dataset(tmp_path), "side", seed=0)
    assert splits.labels == ("front", "back", "none")
    assert len(splits.train) == 24 and len(splits.val) == 6
    assert Counter(s.label for s in splits.val) == {0: 2, 1: 2, 2: 2}


def test_folder_with_train_and_val_keeps_that_split(tmp_path):
    _folder_dataset(tmp_path / "train", ("MAJORSCRACH", "MINOR_SCRACH", "NO_SCRACH"), per_class=4)
    _folder_dataset(tmp_path / "val", ("major_scratch", "minor_scratch", "no_scratch"), per_class=2)
    splits = load_splits(tmp_path, "scratch")
    assert len(splits.train) == 12 and len(splits.val) == 6
    assert all("/train/" in s.key for s in splits.train) and all("/val/" in s.key for s in splits.val)


def test_missing_class_is_a_clear_error(tmp_path):
    _folder_dataset(tmp_path, ("front", "back"))
    with pytest.raises(ValueError, match="no images for class.*none"):
        load_splits(tmp_path, "side")


def test_unknown_class_folder_is_a_clear_error(tmp_path):
    _folder_dataset(tmp_path, ("front", "back", "none", "tablet"))
    with pytest.raises(ValueError, match="unknown side class 'tablet'"):
        load_splits(tmp_path, "side")


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    _folder_dataset(tmp_path)
    (tmp_path / "Front" / "broken.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "Front" / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        samples, skipped = imagefolder_samples(tmp_path, "side")
    assert skipped == 2 and len(samples) == 30


def test_datasets_folder_on_disk_is_a_data_source(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(15)]
    names = ["front", "back", "none"]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    ds = datasets.Dataset.from_dict({"image": images, "label": [i % 3 for i in range(15)]}, features=features)
    ds.save_to_disk(str(tmp_path / "ds"))
    splits = load_splits(tmp_path / "ds", "side", val_fraction=0.2, seed=0)
    assert len(splits.train) == 12 and len(splits.val) == 3
    image, label = PhotoDataset(splits.val, eval_transform(Preprocessing(32)))[0]
    assert image.shape == (3, 32, 32) and label in (0, 1, 2)


def test_datasets_string_labels_with_aliases(tmp_path):
    import datasets

    image = Image.new("RGB", (8, 8), "red")
    ds = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"image": [image] * 6, "label": ["MAJORSCRACH", "MINOR_SCRACH",
                                                                             "NO_SCRACH"] * 2}),
        "validation": datasets.Dataset.from_dict({"image": [image] * 3, "label": ["major_scratch", "minor_scratch",
                                                                                   "no_scratch"]}),
    }).cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "ds"))
    splits = load_splits(tmp_path / "ds", "scratch")
    assert [s.label for s in splits.val] == [0, 1, 2] and len(splits.train) == 6


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "L", "I;16", "1"])
def test_images_in_any_mode_load_as_rgb(mode):
    image = Image.new("RGB", (10, 6), (200, 40, 40)).convert(mode) if mode != "I;16" else \
        Image.fromarray(np.full((6, 10), 40000, dtype=np.uint16))
    loaded = load_image(image)
    assert loaded.mode == "RGB" and loaded.size == (10, 6)


def test_sixteen_bit_images_are_scaled_not_clipped():
    loaded = load_image(Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)))
    assert 120 <= np.asarray(loaded)[0, 0, 0] <= 135


def test_transparent_pixels_become_white():
    loaded = load_image(Image.new("RGBA", (4, 4), (0, 0, 0, 0)))
    assert np.asarray(loaded)[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert load_image(buffer.getvalue()).size == (20, 40)


@pytest.mark.parametrize("payload", [b"", b"GIF89a-nonsense", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_unreadable_bytes_raise_image_load_error(payload):
    with pytest.raises(ImageLoadError, match="not a readable image"):
        load_image(payload)


def test_truncated_jpeg_is_refused():
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    with pytest.raises(ImageLoadError):
        load_image(buffer.getvalue()[: len(buffer.getvalue()) // 2])


@pytest.mark.parametrize("side", [30000, 9000])  # 9000² is above our limit but below Pillow's error threshold
def test_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    path = tmp_path / "bomb.png"
    Image.new("1", (side, side)).save(path)
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_eval_transform_gives_normalised_square_tensor():
    tensor = eval_transform(Preprocessing(32))(Image.new("RGB", (100, 50), (124, 116, 104)))
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32
    assert tensor.abs().max() < 0.05  # the ImageNet mean colour normalises to about zero


def _smooth_photo(width: int, height: int) -> Image.Image:
    """A photo-like image: smooth gradients, so that scaled decoding and full decoding can be compared."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8))


def test_large_jpeg_is_decoded_at_reduced_scale_but_never_below_min_side():
    buffer = io.BytesIO()
    _smooth_photo(2000, 1500).save(buffer, "JPEG", quality=90)
    assert load_image(buffer.getvalue()).size == (2000, 1500)
    assert load_image(buffer.getvalue(), min_side=256).size == (500, 375)  # 1/4 scale; 1/8 would give 188 < 256
    assert load_image(buffer.getvalue(), min_side=1000).size == (2000, 1500)  # 1/2 would give 750 < 1000
    png = io.BytesIO()
    _smooth_photo(2000, 1500).save(png, "PNG")
    assert load_image(png.getvalue(), min_side=256).size == (2000, 1500)  # only JPEG decoders scale


def test_reduced_decoding_and_shrinking_keep_the_model_input_nearly_the_same():
    photo = _smooth_photo(2400, 1800)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=95)
    fast = eval_transform(Preprocessing(64))(load_image(buffer.getvalue(), min_side=128))
    exact = T.Compose([T.PILToTensor(), T.Resize((64, 64), antialias=True), T.ToDtype(torch.float32, scale=True),
                       T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])(photo)
    assert fast.shape == exact.shape == (3, 64, 64)
    assert (fast - exact).abs().max() < 0.1  # about 5 of 255 grey levels after normalisation


def test_photo_dataset_decodes_at_twice_the_model_input(tmp_path):
    path = _write(tmp_path / "big.jpg", _smooth_photo(1600, 1200), quality=90)
    seen = []
    dataset = PhotoDataset([Sample(lambda: str(path), 0, "big")], lambda image: seen.append(image.size) or 0, 100)
    dataset[0]
    assert seen == [(400, 300)]  # 1/4 scale: the short side 300 ≥ 200; 1/8 would give 150


def test_photos_held_in_memory_give_the_same_tensors_without_reading_their_files(tmp_path):
    from phonegrade.transforms import train_transform

    paths = [_write(tmp_path / f"{i}.jpg", _smooth_photo(900 + 100 * i, 700), quality=90) for i in range(3)]
    samples = [Sample(lambda path=path: str(path), 0, path.name) for path in paths]
    for transform in (eval_transform(Preprocessing(64)), train_transform(Preprocessing(64))):
        from_files = PhotoDataset(samples, transform, 64)
        held = PhotoDataset(samples, transform, 64)
        assert held.hold_in_memory(budget_mb=100) == 3
        torch.manual_seed(1)
        expected = [from_files[i][0] for i in range(3)]
        torch.manual_seed(1)
        assert all(torch.equal(held[i][0], expected[i]) for i in range(3))
    for path in paths:
        path.unlink()
    assert held[2][0].shape == (3, 64, 64)  # no file left to read
    with pytest.raises(ImageLoadError, match="no such file"):
        from_files[2]


def test_photo_memory_budget_holds_what_fits_and_the_rest_loads_from_files(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", _smooth_photo(200, 150)) for i in range(4)]  # short side < 2 × 128
    dataset = PhotoDataset([Sample(lambda path=path: str(path), 0, path.name) for path in paths],
                           eval_transform(Preprocessing(64)), 64)
    one_photo_mb = 200 * 150 * 3 / 2**20
    assert dataset.hold_in_memory(budget_mb=2.5 * one_photo_mb) == 2
    assert sorted(dataset.decoded) == [0, 1]
    assert dataset.held_mb == pytest.approx(2 * one_photo_mb)
    assert dataset.hold_in_memory(budget_mb=2.5 * one_photo_mb) == 2  # the photos held count against the budget
    assert dataset[3][0].shape == (3, 64, 64)  # read from its file


def test_strong_augmentation_gives_model_sized_tensors_that_vary_per_draw():
    from phonegrade.transforms import train_transform

    transform = train_transform(Preprocessing(48), augment="strong")
    photo = _smooth_photo(300, 200)
    torch.manual_seed(0)
    first, second = transform(photo), transform(photo)
    assert first.shape == second.shape == (3, 48, 48) and first.dtype == torch.float32
    assert not torch.equal(first, second)
    with pytest.raises(ValueError, match="unknown augmentation 'wild'"):
        train_transform(Preprocessing(48), augment="wild")


def test_extra_training_sources_may_lack_classes_or_be_taken_as_one_class(tmp_path):
    from phonegrade.data import extra_training_samples

    backs = tmp_path / "backs-only" / "back"
    backs.mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(backs / "a.png")
    samples, name = extra_training_samples(str(tmp_path / "backs-only"), "side")
    assert [s.label for s in samples] == [1] and name == "backs-only"

    nested = tmp_path / "scratch-photos"
    for i, folder in enumerate(("MAJORSCRACH", "NO_SCRACH/web", "NO_SCRACH/lab")):
        (nested / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(nested / folder / f"{i}.jpg")
    (nested / "NO_SCRACH" / "broken.jpg").write_bytes(b"not a photo")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        samples, name = extra_training_samples(f"{nested}=front", "side")
    assert len(samples) == 3 and {s.label for s in samples} == {0} and name == "scratch-photos as front"
    with pytest.raises(DataError, match="unknown side class 'sideways'"):
        extra_training_samples(f"{nested}=sideways", "side")


def test_mirror_padding_shrinks_the_photo_into_its_own_reflected_edges():
    from phonegrade.transforms import RandomMirrorPad

    torch.manual_seed(3)
    image = torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8)
    assert torch.equal(RandomMirrorPad(0.0)(image), image)
    padded = RandomMirrorPad(1.0, scale=(0.6, 0.6))(image)
    assert padded.shape == image.shape and padded.dtype == torch.uint8 and not torch.equal(padded, image)
    # Rows and columns outside the shrunk photo mirror those inside it: find the photo's box, check one edge.
    inner_h, inner_w = 24, 36
    boxes = [(top, left) for top in range(40 - inner_h + 1) for left in range(60 - inner_w + 1)]
    small = torch.nn.functional.interpolate(image[None].float(), size=(inner_h, inner_w), mode="bilinear",
                                            antialias=True, align_corners=False)[0]
    top, left = min(boxes, key=lambda b: (padded[:, b[0]:b[0] + inner_h, b[1]:b[1] + inner_w].float()
                                          - small).abs().mean().item())
    rows = slice(top, top + inner_h)
    if left > 0:  # the column left of the photo repeats its second column (reflection without the edge)
        assert torch.equal(padded[:, rows, left - 1], padded[:, rows, left + 1])
    else:  # 24 columns of padding in all: then they are on the right
        right = left + inner_w - 1
        assert torch.equal(padded[:, rows, right + 1], padded[:, rows, right - 1])
    with pytest.raises(ConfigError, match="between 0 and 1"):
        RandomMirrorPad(1.5)


def test_one_preprocessing_loads_a_photo_and_says_where_the_model_input_lies_in_it():
    from phonegrade.transforms import Preprocessing

    big = Image.new("RGB", (4000, 3000), (90, 120, 150))
    buffer = io.BytesIO()
    big.save(buffer, "JPEG")
    loaded = Preprocessing(image_size=224).load(buffer.getvalue())
    assert min(loaded.size) >= 448 and loaded.size[0] < 4000  # decoded at reduced scale, never below 2× the input
    assert Preprocessing(image_size=224).input_box((400, 300)) == (0, 0, 400, 300)  # the whole photo
    # crop_pct 0.875: the short side resized to 256, the centre 224 kept: 300 × 224 / 256 photo pixels.
    left, top, right, bottom = Preprocessing(image_size=224, crop_pct=0.875).input_box((400, 300))
    assert (right - left, bottom - top) == pytest.approx((262.5, 262.5))
    assert (left + right) / 2 == pytest.approx(200) and (top + bottom) / 2 == pytest.approx(150)


def test_a_missing_folder_in_dir_equals_label_names_the_folder(tmp_path):
    from phonegrade.data import extra_training_samples

    with pytest.raises(DataError, match=r"nope: no such folder \(in .*nope=front, read as DIR=LABEL\)"):
        extra_training_samples(f"{tmp_path / 'runs' / 'nope'}=front", "side")
    with pytest.raises(DataError, match="no such folder"):
        extra_training_samples("runs/nope=front", "side")


def test_a_name_that_is_no_folder_and_no_valid_hub_id_says_both():
    with pytest.raises(DataError, match="bad name!: no such local folder, .* not a valid Hub dataset id"):
        load_splits("bad name!", "side")
