import json
from pathlib import Path

import pytest
from PIL import Image

from phonegrade.cli import main as cli_main
from phonegrade.corrections import (
    CorrectionStore,
    Prediction,
    clean_comment,
    content_hash,
    keyed_hash,
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
        store.add(load_image(path), FRONT_PREDICTED, corrected_side=label, consent=True)
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
    store.add(Image.new("RGB", (4, 4), "red"), FRONT_PREDICTED, corrected_side="back", consent=True)
    store.add(Image.new("RGB", (4, 4), "blue"), FRONT_PREDICTED, corrected_side="front",
              corrected_scratch="major_scratch", consent=True)
    store.add(Image.new("RGB", (4, 4), "green"), FRONT_PREDICTED, corrected_side="none")  # no photo
    assert cli_main(["corrections", "show", "--source", str(store.root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == 3 and summary["without_photo"] == 1
    assert summary["side"] == {"corrections": 3, "by_label": {"back": 1, "front": 1, "none": 1},
                               "disagreed_with_model": 2, "confusions": {"front -> back": 1, "front -> none": 1}}
    assert summary["scratch"]["by_label"] == {"major_scratch": 1}

    assert cli_main(["corrections", "export", "--source", str(store.root), "--out", str(tmp_path / "ds"),
                     "--task", "side"]) == 0
    import datasets

    exported = datasets.load_from_disk(str(tmp_path / "ds"))
    assert sorted(exported.features["label"].int2str(exported["label"])) == ["back", "front"]


def test_export_needs_an_output_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["corrections", "export", "--source", str(tmp_path)])
    assert exit_.value.code == 2 and "--out" in capsys.readouterr().err


def test_without_consent_the_published_hash_is_keyed_so_a_photo_cannot_be_matched_to_it(tmp_path):
    store = CorrectionStore(tmp_path / "a").ensure()
    photo = Image.new("RGB", (9, 5), (200, 10, 10))
    first, again = (store.add(photo, FRONT_PREDICTED, corrected_side="back") for _ in range(2))
    contributed = store.add(photo, FRONT_PREDICTED, corrected_side="back", consent=True)
    records = {r["record_id"]: r for r in store.records()}
    # Anyone can compute content_hash(photo); only this store's secret gives the keyed hash.
    assert records[first]["content_hash"] == keyed_hash(photo, store.hash_key()) != content_hash(photo)
    assert content_hash(photo)[:12] not in first  # nor does the record id carry the plain hash
    assert records[again]["content_hash"] == records[first]["content_hash"]  # repeats still group together
    assert records[contributed]["content_hash"] == content_hash(photo)  # the photo itself is published anyway
    other = CorrectionStore(tmp_path / "b").ensure()
    other.add(photo, FRONT_PREDICTED, corrected_side="back")
    assert other.records()[0]["content_hash"] != records[first]["content_hash"]
    key_file = store.root / ".hash-key"
    assert len(key_file.read_bytes()) == 32 and key_file.stat().st_mode & 0o077 == 0  # owner only
    assert CorrectionStore(store.root).hash_key() == store.hash_key()  # kept across restarts


def test_without_consent_the_record_keeps_labels_probabilities_and_hash_but_no_photo(tmp_path):
    store = CorrectionStore(tmp_path).ensure()
    photo = Image.new("RGB", (9, 5), (200, 10, 10))
    record_id = store.add(photo, FRONT_PREDICTED, corrected_side="back", comment="mine")
    (record,) = store.records()
    assert record["record_id"] == record_id and record["image_path"] is None
    assert record["licence"] is None and record["photo_stored"] is False
    assert (record["width"], record["height"]) == (9, 5)
    assert record["corrected_side"] == "back" and json.loads(record["side_probabilities"]) == FRONT_PREDICTED.side
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and p.name not in ("README.md", ".hash-key")]
    assert [p.name for p in stored] == ["record.jsonl"]  # no image file of any kind, no placeholder
    assert not any(p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") for p in tmp_path.rglob("*"))
    (row,) = load_correction_rows(tmp_path)  # the loader copes: the row is there, without an image
    assert row["record_id"] == record_id and row["image"] is None and row["photo_stored"] is False


def test_with_consent_the_photo_is_kept_re_encoded_under_cc_by_4(tmp_path):
    import io

    from PIL import PngImagePlugin

    store = CorrectionStore(tmp_path).ensure()
    photo = Image.new("RGB", (9, 5), (200, 10, 10))
    info, buffer = PngImagePlugin.PngInfo(), io.BytesIO()
    info.add_text("Comment", "MARKER-IN-A-CHUNK")
    photo.save(buffer, "PNG", pnginfo=info)
    store.add(load_image(buffer.getvalue() + b"MARKER-AFTER-THE-END"), FRONT_PREDICTED, corrected_side="back",
              consent=True)
    (record,) = store.records()
    assert record["licence"] == "CC-BY-4.0" and record["photo_stored"] is True
    assert Image.open(record["image_path"]).tobytes() == photo.tobytes()
    assert b"MARKER" not in Path(record["image_path"]).read_bytes()  # re-encoded: no chunk or byte kept
    (row,) = load_correction_rows(tmp_path)
    assert row["image"].tobytes() == photo.tobytes() and row["licence"] == "CC-BY-4.0"
    assert "cc-by-4.0" in (tmp_path / "README.md").read_text()


def test_records_without_a_photo_never_reach_training(side_data, tmp_path):
    splits = load_splits(side_data, "side")
    store = CorrectionStore(tmp_path / "c").ensure()
    label = splits.train[0].label
    other = splits.labels[(label + 1) % 3]
    store.add(load_image(splits.train[0].key), FRONT_PREDICTED, corrected_side=other)  # no consent
    store.add(Image.new("RGB", (30, 30), (1, 2, 3)), FRONT_PREDICTED, corrected_side="back")
    n_train = len(splits.train)
    report = merge_corrections(splits, load_correction_rows(store.root), "side")
    assert report == {"corrections": 0, "added_train": 0, "added_val": 0, "relabelled": 0, "skipped_in_val": 0}
    assert len(splits.train) == n_train and splits.train[0].label == label


def test_a_removed_record_is_gone_from_the_folder_and_logged_for_the_hub(tmp_path, capsys):
    store = CorrectionStore(tmp_path).ensure()
    kept = store.add(Image.new("RGB", (4, 4), "red"), FRONT_PREDICTED, corrected_side="back", consent=True)
    removed = store.add(Image.new("RGB", (4, 4), "blue"), FRONT_PREDICTED, corrected_side="none", consent=True)
    assert cli_main(["corrections", "remove", "--id", removed, "--source", str(tmp_path)]) == 0
    assert "next push" in capsys.readouterr().out
    assert [r["record_id"] for r in store.records()] == [kept]
    assert [r["record_id"] for r in load_correction_rows(tmp_path)] == [kept]
    assert not any(removed in str(p) for p in (tmp_path / "records").rglob("*"))
    assert list(store.removals()) == [removed]
    assert cli_main(["corrections", "remove", "--id", removed, "--source", str(tmp_path)]) == 2
    assert "no record" in capsys.readouterr().err


@pytest.mark.parametrize("label", ["sideways", "MAJOR"])
def test_unknown_corrected_labels_are_refused(tmp_path, label):
    from phonegrade.errors import CorrectionError

    with pytest.raises(CorrectionError):
        CorrectionStore(tmp_path).add(Image.new("RGB", (4, 4)), FRONT_PREDICTED, corrected_scratch=label)
