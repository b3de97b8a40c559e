import json

import pytest
from PIL import Image

from phonegrade.cli import main as cli_main
from phonegrade.corrections import (
    CorrectionStore,
    Prediction,
    clean_comment,
    content_hash,
    latest_by_image,
    load_correction_rows,
    merge_corrections,
)
from phonegrade.data import load_splits
from phonegrade.images import load_image

FRONT_PREDICTED = Prediction({"front": 0.6, "back": 0.3, "none": 0.1}, {"major_scratch": 0.2, "minor_scratch": 0.3,
                                                                         "no_scratch": 0.5})


def test_content_hash_depends_on_pixels_not_file_format(tmp_path):
    image = Image.new("RGB", (7, 5), (10, 20, 30))
    image.save(tmp_path / "a.png")
    image.save(tmp_path / "b.bmp")
    assert content_hash(load_image(tmp_path / "a.png")) == content_hash(load_image(tmp_path / "b.bmp"))
    assert content_hash(image) != content_hash(Image.new("RGB", (7, 5), (10, 20, 31)))


def test_comments_are_plain_bounded_text():
    assert clean_comment("<img src=x onerror=alert(1)>scratched <b>a lot</b>\x00\x1b") == "scratched a lot"
    assert len(clean_comment("x" * 5000)) == 500
    assert clean_comment(None) == ""


def test_newest_correction_of_a_photo_wins(tmp_path):
    store = CorrectionStore(tmp_path).ensure()
    photo = Image.new("RGB", (6, 6), "red")
    store.add(photo, FRONT_PREDICTED, corrected_side="back")
    store.add(photo, FRONT_PREDICTED, corrected_side="none")
    store.add(Image.new("RGB", (6, 6), "blue"), FRONT_PREDICTED, corrected_scratch="no_scratch")
    latest = latest_by_image(load_correction_rows(tmp_path), "side")
    assert [row["corrected_side"] for row in latest.values()] == ["none"]


def test_half_written_records_are_invisible(tmp_path):
    store = CorrectionStore(tmp_path).ensure()
    store.add(Image.new("RGB", (4, 4)), FRONT_PREDICTED, corrected_side="back")
    staged = tmp_path / ".staging" / "crashed"
    staged.mkdir()
    (staged / "image.png").write_bytes(b"\x89PNG partial")
    assert len(store.records()) == 1 and len(load_correction_rows(tmp_path)) == 1


def _corrections_for(store, paths_and_labels):
    for path, label in paths_and_labels:
        store.add(load_image(path), FRONT_PREDICTED, corrected_side=label)
    return load_correction_rows(store.root)


def test_merge_adds_new_photos_to_train_relabels_known_ones_and_keeps_validation_clean(side_data, tmp_path):
    splits = load_splits(side_data, "side")
    train_photo, val_photo = splits.train[0].key, splits.val[0].key
    new_photo = tmp_path / "new.png"
    Image.new("RGB", (30, 30), (1, 2, 3)).save(new_photo)
    rows = _corrections_for(CorrectionStore(tmp_path / "c").ensure(),
                            [(train_photo, "none"), (val_photo, "none"), (new_photo, "back")])
    n_train, n_val = len(splits.train), len(splits.val)
    report = merge_corrections(splits, rows, "side")
    assert report == {"corrections": 3, "added_train": 1, "added_val": 0, "relabelled": 1, "skipped_in_val": 1}
    assert len(splits.train) == n_train + 1 and len(splits.val) == n_val
    assert splits.train[0].label == 2 and splits.train[-1].label == 1
    assert splits.val[0].key == val_photo  # validation untouched


def test_merge_into_val_when_asked(side_data, tmp_path):
    splits = load_splits(side_data, "side")
    val_photo = splits.val[0].key
    rows = _corrections_for(CorrectionStore(tmp_path / "c").ensure(), [(val_photo, "none")])
    report = merge_corrections(splits, rows, "side", into_val=True)
    assert report["relabelled"] == 1 and splits.val[0].label == 2


def test_corrections_command_shows_and_exports(tmp_path, capsys):
    store = CorrectionStore(tmp_path / "c").ensure()
    store.add(Image.new("RGB", (4, 4), "red"), FRONT_PREDICTED, corrected_side="back")
    store.add(Image.new("RGB", (4, 4), "blue"), FRONT_PREDICTED, corrected_side="front",
              corrected_scratch="major_scratch")
    assert cli_main(["corrections", "show", "--source", str(store.root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == 2
    assert summary["side"] == {"corrections": 2, "by_label": {"back": 1, "front": 1}, "disagreed_with_model": 1,
                               "confusions": {"front -> back": 1}}
    assert summary["scratch"]["by_label"] == {"major_scratch": 1}

    assert cli_main(["corrections", "export", "--source", str(store.root), "--out", str(tmp_path / "ds"),
                     "--task", "side"]) == 0
    import datasets

    exported = datasets.load_from_disk(str(tmp_path / "ds"))
    assert sorted(exported.features["label"].int2str(exported["label"])) == ["back", "front"]


def test_export_needs_an_output_folder(tmp_path, capsys):
    assert cli_main(["corrections", "export", "--source", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.parametrize("label", ["sideways", "MAJOR"])
def test_unknown_corrected_labels_are_refused(tmp_path, label):
    from phonegrade.errors import CorrectionError

    with pytest.raises(CorrectionError):
        CorrectionStore(tmp_path).add(Image.new("RGB", (4, 4)), FRONT_PREDICTED, corrected_scratch=label)
