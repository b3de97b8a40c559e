"""Tests of the procedural phone-photo generator (phonegrade.synth)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phonegrade import synth
from phonegrade.labels import SCRATCH_LABELS, SIDE_LABELS, labels_for_task

ALL_TASK_LABELS = [("side", label) for label in SIDE_LABELS] + [("scratch", label) for label in SCRATCH_LABELS]


def _pixels(image):
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("task,label", ALL_TASK_LABELS)
@pytest.mark.parametrize("size", [33, 96])
def test_every_label_renders_rgb_image_of_requested_size(task, label, size):
    for seed in range(3):
        image = synth.render(task, label, size, np.random.default_rng(seed))
        assert isinstance(image, Image.Image)
        assert image.mode == "RGB"
        assert image.size == (size, size)
        assert _pixels(image).std() > 5  # a picture, not a blank frame


def test_renderers_map_each_task_to_its_function():
    assert {"side": synth.render_side, "scratch": synth.render_scratch} == synth.RENDERERS


@pytest.mark.parametrize("task,label", ALL_TASK_LABELS)
def test_same_seed_gives_same_pixels_and_other_seed_differs(task, label):
    first = synth.render(task, label, 64, np.random.default_rng(123))
    again = synth.RENDERERS[task](label, 64, np.random.default_rng(123))
    other = synth.render(task, label, 64, np.random.default_rng(124))
    assert np.array_equal(_pixels(first), _pixels(again))
    assert np.abs(_pixels(first) - _pixels(other)).mean() > 2


def test_render_rejects_unknown_task_label_size_and_rng():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown task"):
        synth.render("colour", "front", 64, rng)
    with pytest.raises(ValueError, match="unknown side label"):
        synth.render("side", "major_scratch", 64, rng)
    with pytest.raises(ValueError, match="unknown scratch label"):
        synth.render_scratch("front", 64, rng)
    with pytest.raises(ValueError, match="size"):
        synth.render_side("front", 4, rng)
    with pytest.raises(TypeError, match="Generator"):
        synth.render_side("front", 64, 0)


def _edge_fraction(gray, threshold=40):
    return (np.abs(np.diff(gray, axis=1)) > threshold).mean() + (np.abs(np.diff(gray, axis=0)) > threshold).mean()


def _t_statistic(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    return (x.mean() - y.mean()) / np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))


def test_screens_make_front_and_lookalike_photos_busier_than_backs():
    # Screens (phone UI, monitors, keypads) are full of edges; a phone back is a smooth
    # panel with a camera cluster.  Backgrounds, pose and lighting vary alike in every
    # class, so the difference must survive them: a clear two-sample t statistic.
    busy = {
        label: [_edge_fraction(_pixels(synth.render_side(label, 96, np.random.default_rng([5, li, i]))).mean(axis=2))
                for i in range(30)]
        for li, label in enumerate(SIDE_LABELS)
    }
    assert _t_statistic(busy["front"], busy["back"]) > 3
    assert _t_statistic(busy["none"], busy["back"]) > 2.5


def _drawn_objects(monkeypatch, label, count):
    """The object sprites (RGBA, long side 200 px) render_side draws, before any photo effects."""
    monkeypatch.setattr(synth, "_photograph", lambda rng, size, draw_object, **kwargs: draw_object(rng, size))
    return [np.asarray(synth.render_side(label, 200, np.random.default_rng(seed)), np.float64) for seed in range(count)]


def test_drawn_objects_carry_the_class_defining_structure(monkeypatch):
    objects = {label: _drawn_objects(monkeypatch, label, 30) for label in SIDE_LABELS}

    def aspect(sprite):
        h, w = sprite.shape[:2]
        return max(h, w) / min(h, w)

    def busy_lower_part(sprite):  # below the camera cluster of a back, inside the bezel of a front
        h, w = sprite.shape[:2]
        return _edge_fraction(sprite[int(0.35 * h):int(0.95 * h), int(0.1 * w):int(0.9 * w), :3].mean(axis=2), 30)

    for label in ("front", "back"):
        assert all(1.9 < aspect(s) < 2.25 for s in objects[label]), "phones are tall and narrow"
    phone_shaped = np.mean([1.9 < aspect(s) < 2.25 for s in objects["none"]])
    assert phone_shaped < 0.3, "most look-alikes must not have a phone's outline"
    front_busy = np.median([busy_lower_part(s) for s in objects["front"]])
    back_busy = np.median([busy_lower_part(s) for s in objects["back"]])
    assert front_busy > 3 * back_busy, "a front shows screen content, a back a smooth panel"


def test_scratches_are_drawn_on_an_otherwise_identical_photo():
    # One generator state renders the same photo for every scratch label; only the
    # scratches differ, so the labels can be compared pixel for pixel.
    major_changed, minor_changed = [], []
    for seed in range(10):
        clean = _pixels(synth.render_scratch("no_scratch", 96, np.random.default_rng(seed)))
        minor = _pixels(synth.render_scratch("minor_scratch", 96, np.random.default_rng(seed)))
        major = _pixels(synth.render_scratch("major_scratch", 96, np.random.default_rng(seed)))
        minor_diff = np.abs(minor - clean).max(axis=2)
        major_diff = np.abs(major - clean).max(axis=2)
        assert minor_diff.max() > 20, "a minor scratch must be visible"
        minor_changed.append((minor_diff > 20).mean())
        major_changed.append((major_diff > 20).mean())
        # scratches stay on the screen: most of the frame is untouched
        assert (major_diff > 0).mean() < 0.3
        assert major_changed[-1] > minor_changed[-1]
    assert np.mean(major_changed) > 4 * np.mean(minor_changed)


def _listing(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))


def test_write_synthetic_dataset_layout_and_stratified_counts(tmp_path):
    counts = synth.write_synthetic_dataset("side", tmp_path, per_class=10, size=32, seed=3, progress=False)
    assert counts == {"train": {label: 8 for label in SIDE_LABELS}, "val": {label: 2 for label in SIDE_LABELS}}
    for split, expected in (("train", range(0, 8)), ("val", range(8, 10))):
        for label in SIDE_LABELS:
            names = sorted(p.name for p in (tmp_path / split / label).iterdir())
            assert names == [f"{label}_{i:05d}.png" for i in expected]
    with Image.open(tmp_path / "val" / "back" / "back_00009.png") as image:
        assert image.mode == "RGB" and image.size == (32, 32)


@pytest.mark.parametrize("per_class,val_fraction,expected_val", [(2, 0.2, 1), (2, 0.9, 1), (7, 0.5, 4), (20, 0.25, 5)])
def test_val_count_is_rounded_and_both_splits_stay_non_empty(tmp_path, per_class, val_fraction, expected_val):
    counts = synth.write_synthetic_dataset("scratch", tmp_path, per_class, size=24, val_fraction=val_fraction,
                                           progress=False)
    for label in SCRATCH_LABELS:
        assert counts["val"][label] == expected_val
        assert counts["train"][label] == per_class - expected_val
        assert len(list((tmp_path / "val" / label).glob("*.png"))) == expected_val


def test_written_files_are_byte_identical_and_independent_of_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    synth.write_synthetic_dataset("scratch", a, per_class=4, size=40, seed=7, progress=False)
    synth.write_synthetic_dataset("scratch", b, per_class=4, size=40, seed=7, progress=False)
    assert _listing(a) == _listing(b)
    for rel in _listing(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    # Each image comes from its own SeedSequence([seed, task_index, label_index, i]).
    label_index = SCRATCH_LABELS.index("minor_scratch")
    rng = np.random.default_rng(np.random.SeedSequence([7, 1, label_index, 3]))
    expected = synth.render("scratch", "minor_scratch", 40, rng)
    with Image.open(a / "val" / "minor_scratch" / "minor_scratch_00003.png") as written:
        assert np.array_equal(_pixels(written), _pixels(expected))


def test_different_seed_writes_different_images(tmp_path):
    synth.write_synthetic_dataset("side", tmp_path / "s0", per_class=2, size=32, seed=0, progress=False)
    synth.write_synthetic_dataset("side", tmp_path / "s1", per_class=2, size=32, seed=1, progress=False)
    rel = Path("train") / "front" / "front_00000.png"
    assert (tmp_path / "s0" / rel).read_bytes() != (tmp_path / "s1" / rel).read_bytes()


def test_refuses_to_write_into_non_empty_split_unless_overwrite(tmp_path):
    synth.write_synthetic_dataset("side", tmp_path, per_class=3, size=24, progress=False)
    stale = tmp_path / "val" / "front" / "stale.png"
    stale.write_bytes(b"old")
    keep = tmp_path / "README.txt"
    keep.write_text("not ours")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        synth.write_synthetic_dataset("side", tmp_path, per_class=3, size=24, progress=False)
    assert stale.exists()
    counts = synth.write_synthetic_dataset("side", tmp_path, per_class=3, size=24, progress=False, overwrite=True)
    assert not stale.exists()
    assert keep.read_text() == "not ours"  # only train/ and val/ are cleared
    assert sum(counts["train"].values()) + sum(counts["val"].values()) == len(_listing(tmp_path)) == 9


def test_empty_split_folders_are_not_in_the_way(tmp_path):
    (tmp_path / "train" / "front").mkdir(parents=True)
    (tmp_path / "val").mkdir()
    counts = synth.write_synthetic_dataset("side", tmp_path, per_class=2, size=24, progress=False)
    assert counts["train"] == {label: 1 for label in SIDE_LABELS}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"task": "colour"}, "unknown task"),
        ({"per_class": 1}, "per_class"),
        ({"per_class": 0}, "per_class"),
        ({"per_class": 2.5}, "per_class"),
        ({"per_class": True}, "per_class"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": -0.2}, "val_fraction"),
        ({"size": 8}, "size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_write_synthetic_dataset_rejects_bad_arguments_before_writing(tmp_path, kwargs, match):
    args = {"task": "side", "out_dir": tmp_path / "out", "per_class": 4, "size": 24, "progress": False}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        synth.write_synthetic_dataset(**args)
    assert not (tmp_path / "out").exists()


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    synth.write_synthetic_dataset("side", tmp_path, per_class=2, size=24, progress=True)
    captured = capsys.readouterr()
    assert "synthetic side" in captured.err
    assert captured.out == ""


# Digests of eight 64 px renders per label, made before the renderer was split into scene-part modules: any change
# to what is drawn (phones, backs, look-alikes, backgrounds, scratches) changes one of them.
PINNED_RENDERS = {
    ("side", "front"): "e8ae05e1c03d543b",
    ("side", "back"): "020b1e58fc848166",
    ("side", "none"): "9885ccfa463d6341",
    ("scratch", "major_scratch"): "cded8345c56b176e",
    ("scratch", "minor_scratch"): "1a5c68d192769723",
    ("scratch", "no_scratch"): "3a78feb74ffb20fb",
}


@pytest.mark.parametrize(("task", "label"), list(PINNED_RENDERS))
def test_renders_match_their_pinned_digests(task, label):
    import hashlib

    index = list(labels_for_task(task)).index(label)
    digest = hashlib.sha256()
    for seed in range(8):
        digest.update(np.asarray(synth.render(task, label, 64, np.random.default_rng([seed, index]))).tobytes())
    assert digest.hexdigest()[:16] == PINNED_RENDERS[(task, label)]
