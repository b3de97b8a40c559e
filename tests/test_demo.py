import json

import pytest
import torch
from PIL import Image

from phonegrade.corrections import CorrectionStore, content_hash
from phonegrade.demo import Grader, load_model
from phonegrade.errors import CorrectionError


@pytest.fixture
def grader(trained_side_model, trained_scratch_model, tmp_path):
    return Grader(load_model(str(trained_side_model)), load_model(str(trained_scratch_model)),
                  CorrectionStore(tmp_path / "corrections"), max_upload_bytes=200_000)


def test_local_models_are_identified_by_a_weights_hash(grader):
    assert grader.side.revision.startswith("sha256:") and len(grader.side.revision) == len("sha256:") + 12


def test_scratch_is_graded_only_for_front_views(grader, side_data):
    images = [Image.open(path).convert("RGB") for path in sorted(side_data.glob("*/*/*.png"))]
    # The tiny test model calls few photos front: raise its front logit by the median gap to the top one, so that
    # about half are called front and both branches run (an in-place update, as an optimizer step makes).
    side = grader.side.classifier
    front = side.labels.index("front")
    with torch.no_grad():
        logits = side(side.preprocess(images))
        side.net.head[-1].bias[front] += (logits.max(dim=1).values - logits[:, front]).median()
    graded = []
    for image in images:
        prediction, note = grader.predict(image)
        assert set(prediction.side) == {"front", "back", "none"}
        top = max(prediction.side, key=prediction.side.get)
        graded.append(top == "front")
        if top == "front":
            assert set(prediction.scratch) == {"major_scratch", "minor_scratch", "no_scratch"} and note == ""
        else:
            assert prediction.scratch == {} and "not graded" in note and f"**{top}**" in note
    assert any(graded) and not all(graded)


def test_flag_stores_the_recomputed_prediction_and_the_models(grader, side_data):
    image = Image.open(next((side_data / "val" / "back").iterdir())).convert("RGB")
    record_id = grader.flag(image, "back", "", "<script>alert(1)</script>looks like a back", consent=True)
    (record,) = grader.store.records()
    assert record["record_id"] == record_id and record["corrected_side"] == "back"
    assert json.loads(record["side_probabilities"]) == pytest.approx(grader.predict(image)[0].side)
    assert record["side_model"] == grader.side.model_id and record["side_revision"] == grader.side.revision
    assert "<" not in record["comment"] and "looks like a back" in record["comment"]
    assert Image.open(record["image_path"]).size == image.size


def test_flag_keeps_the_photo_only_with_consent(grader, side_data):
    image = Image.open(next((side_data / "val" / "back").iterdir())).convert("RGB")
    without = grader.flag(image, "back", "", None)
    with_consent = grader.flag(image, "back", "", None, consent=True)
    records = {r["record_id"]: r for r in grader.store.records()}
    assert records[without]["image_path"] is None and records[without]["licence"] is None
    assert records[with_consent]["licence"] == "CC-BY-4.0"
    assert Image.open(records[with_consent]["image_path"]).tobytes() == image.tobytes()


def test_flag_without_a_label_or_with_an_unknown_one_is_refused(grader):
    image = Image.new("RGB", (8, 8))
    with pytest.raises(CorrectionError, match="pick the correct"):
        grader.flag(image, "", "", None)
    with pytest.raises(CorrectionError, match="side label must be one of"):
        grader.flag(image, "sideways", "", None)
    assert grader.store.records() == []


def test_uploads_over_the_size_limit_are_refused(grader, tmp_path):
    from phonegrade.errors import ImageLoadError

    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 300_000)
    with pytest.raises(ImageLoadError, match="limit is"):
        grader.read_upload(str(big))


def test_api_predict_and_flag_through_gradio_client(running_app, side_data):
    from gradio_client import Client, handle_file

    client = Client(running_app["url"], verbose=False)
    photo = next((side_data / "val" / "front").iterdir())
    result = client.predict(handle_file(str(photo)), api_name="/predict")
    assert set(result["side"]) == {"front", "back", "none"}
    assert sum(result["side"].values()) == pytest.approx(1.0, abs=1e-4)
    top = max(result["side"], key=result["side"].get)
    assert result["graded"] == (top == "front")
    if result["graded"]:
        assert set(result["scratch"]) == {"major_scratch", "minor_scratch", "no_scratch"} and result["note"] == ""
    else:
        assert result["scratch"] is None and f"looks like {top}" in result["note"]
    assert result["side_revision"].startswith("sha256:")

    flagged = client.predict(handle_file(str(photo)), "front", "minor_scratch", "a test", api_name="/flag")
    store = CorrectionStore(running_app["corrections"])
    stored = {r["record_id"]: r for r in store.records()}
    record = stored[flagged["record_id"]]
    assert record["corrected_side"] == "front" and record["corrected_scratch"] == "minor_scratch"
    # /flag asks no consent yet, so the record keeps the photo's pixel hash, not the photo.
    assert record["image_path"] is None and record["content_hash"] == content_hash(Image.open(photo))


def test_api_errors_are_clear_messages(running_app, side_data, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(running_app["url"], verbose=False)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(AppError, match="not a readable image"):
        client.predict(handle_file(str(bad)), api_name="/predict")
    photo = next((side_data / "val" / "back").iterdir())
    with pytest.raises(AppError, match="side label must be one of front, back, none, got 'nonsense'"):
        client.predict(handle_file(str(photo)), "nonsense", "", "", api_name="/flag")


def test_page_states_what_each_default_model_was_trained_on_and_how_well_it_did():
    from phonegrade import DEFAULT_MODELS
    from phonegrade.demo import describe_training_data

    for task in ("side", "scratch"):
        model = load_model(DEFAULT_MODELS[task])
        described, crossval = describe_training_data(model), model.classifier.config.crossval
        assert described.startswith(f"{model.classifier.arch}") and "real photos" in described
        assert (f"5-fold cross-validated accuracy {crossval['accuracy']['mean']:.3f} ± "
                f"{crossval['accuracy']['std']:.3f} on {crossval['n_images']} images") in described


def test_local_model_folders_are_shown_relative_to_the_working_directory(trained_side_model, monkeypatch):
    from phonegrade.demo import display_id

    monkeypatch.chdir(trained_side_model.parent)
    assert display_id(str(trained_side_model)) == trained_side_model.name
    assert load_model(str(trained_side_model)).model_id == trained_side_model.name
    assert display_id("user/side-model") == "user/side-model"
