import json

import pytest
import torch
from PIL import Image

from phonegrade.confidence import top_two_margin
from phonegrade.corrections import CorrectionStore, Prediction, content_hash, keyed_hash, summarize
from phonegrade.errors import ConfigError, CorrectionError
from phonegrade.grading import NOT_A_PHONE_NOTE, Assessment, Grader, load_model
from phonegrade.quality import measure_quality


@pytest.fixture
def grader(trained_side_model, trained_scratch_model, tmp_path):
    return Grader(load_model(str(trained_side_model)), load_model(str(trained_scratch_model)),
                  CorrectionStore(tmp_path / "corrections"), max_upload_bytes=200_000)


@pytest.fixture(scope="module")
def gradable_photo(side_data, tmp_path_factory):
    """A 48 px test photo enlarged to 96 px: the synthetic photos are too small to grade (phonegrade.quality);
    96 px is gradable, with a warning that it is small."""
    path = tmp_path_factory.mktemp("gradable") / "front.png"
    Image.open(next((side_data / "val" / "front").iterdir())).convert("RGB").resize((96, 96)).save(path)
    return path


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
            assert prediction.scratch == {} and "not graded" in note.lower()
            assert (note == NOT_A_PHONE_NOTE) if top == "none" else f"**{top}**" in note
    assert any(graded) and not all(graded)


def make_sure_of(classifier, label: str) -> None:
    """Raise one label's output bias far above the others': the model then gives that label about 1.0 for every
    photo (an in-place update, as an optimizer step makes)."""
    bias = classifier.net.head[-1].bias
    with torch.no_grad():
        bias[classifier.labels.index(label)] = bias.max() + 30.0


def test_a_photo_that_is_not_a_phone_gets_no_grade_no_heatmap_and_says_so(grader, gradable_photo):
    make_sure_of(grader.side.classifier, "none")
    image = Image.open(gradable_photo)
    assessment = grader.assess(image)
    assert assessment.prediction.scratch == {} and assessment.note == NOT_A_PHONE_NOTE
    assert assessment.sentence() == "This does not look like a phone (100 %)"
    assert "Report a wrong prediction" in assessment.note  # invites a correction
    assert grader.explain(image) is None  # nothing to show on it
    _, task, label = grader.explain(image, "side")  # asked by name, the side model still explains itself
    assert (task, label) == ("side", "none")


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
    from phonegrade.demo import CONSENT_LABEL

    image = Image.open(next((side_data / "val" / "back").iterdir())).convert("RGB")
    grader.flag(image, "back", "", "a comment")
    (kept,) = grader.store.records()
    # The consent sentence names everything a record without consent keeps.
    assert kept["image_path"] is None and kept["comment"] == "a comment" and kept["content_hash"]
    assert "your comment" in CONSENT_LABEL and "hash of the pixels" in CONSENT_LABEL
    without = grader.flag(image, "back", "", None)
    with_consent = grader.flag(image, "back", "", None, consent=True)
    records = {r["record_id"]: r for r in grader.store.records()}
    assert records[without]["image_path"] is None and records[without]["licence"] is None
    assert records[with_consent]["licence"] == "CC-BY-4.0"
    assert Image.open(records[with_consent]["image_path"]).tobytes() == image.tobytes()


def test_the_grade_reads_as_a_sentence():
    quality = measure_quality(Image.new("RGB", (200, 200), "white"))
    front = Prediction({"front": 0.9, "back": 0.05, "none": 0.05},
                       {"major_scratch": 0.8, "minor_scratch": 0.15, "no_scratch": 0.05})
    assert Assessment(quality, front, "", "").sentence() == "Front view — major scratches, 80 %"
    back = Prediction({"front": 0.1, "back": 0.7, "none": 0.2}, {})
    assert Assessment(quality, back, "not graded", "").sentence() == "Back view, 70 %"
    lookalike = Prediction({"front": 0.1, "back": 0.03, "none": 0.87}, {})
    assert Assessment(quality, lookalike, "", "").sentence() == "This does not look like a phone (87 %)"
    too_poor = measure_quality(Image.new("RGB", (40, 40)))
    assert Assessment(too_poor, back, "", "").sentence() == "Cannot grade this photo"


def test_the_uploader_is_asked_when_a_model_is_unsure(grader, gradable_photo):
    image = Image.open(gradable_photo)
    prediction, _ = grader.predict(image)
    margin = top_two_margin(prediction.side)
    grader.ask_margin = margin + 1e-3  # just above the side model's margin on this photo: it asks
    asked = grader.assess(image)
    assert asked.ask and "The side model is unsure between" in asked.ask_reason
    first = max(prediction.side, key=prediction.side.get)
    assert f"({round(prediction.side[first] * 100)} %)" in asked.ask_reason
    grader.ask_margin = 0  # never ask
    assert not grader.assess(image).ask and grader.assess(image).ask_reason == ""


def test_a_photo_too_poor_to_grade_gets_no_grade_and_a_poor_one_gets_a_hint(grader, side_data, gradable_photo):
    grader.ask_margin = 1  # asks about every gradable photo
    black = grader.assess(Image.new("RGB", (40, 40)))
    assert not black.gradable and black.sentence() == "Cannot grade this photo" and not black.ask
    assert black.prediction.scratch == {} and "too poor to grade" in black.note
    assert any("black" in w for w in black.quality.warnings)
    small = grader.assess(Image.open(gradable_photo))
    assert small.gradable and small.ask and any("small" in w for w in small.quality.warnings)


def test_explain_lays_a_heatmap_over_the_photo(grader, side_data):
    image = Image.open(next((side_data / "val" / "front").iterdir())).convert("RGB")
    explained, task, label = grader.explain(image, "scratch")
    assert explained.size == image.size and explained.tobytes() != image.tobytes()
    assert task == "scratch" and label in ("major_scratch", "minor_scratch")  # where the damage is
    _, task, label = grader.explain(image, "side", "back")
    assert (task, label) == ("side", "back")
    make_sure_of(grader.side.classifier, "back")
    _, task, _ = grader.explain(image)  # the page's choice: scratch for a front view, side for a back
    assert task == "side"
    make_sure_of(grader.side.classifier, "front")
    _, task, _ = grader.explain(image)
    assert task == "scratch"
    with pytest.raises(ConfigError, match="task must be side or scratch"):
        grader.explain(image, "colour")


def test_answers_to_the_page_asking_are_counted_apart_from_flags(grader, side_data, capsys):
    from phonegrade.cli import main as cli_main

    image = Image.open(next((side_data / "val" / "back").iterdir())).convert("RGB")
    grader.flag(image, "back", "", None)
    grader.flag(image, "back", "", None, asked=True)
    grader.flag(image, "none", "", None, consent=True, asked=True)
    assert [r["source"] for r in grader.store.records()] == ["flagged", "asked", "asked"]
    assert summarize(grader.store.records())["by_source"] == {"flagged": 1, "asked": 2}
    assert cli_main(["corrections", "show", "--source", str(grader.store.root)]) == 0
    assert "1 flagged by users, 2 answers to the demo asking" in capsys.readouterr().out


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


def test_api_predict_and_flag_through_gradio_client(running_app, gradable_photo):
    from gradio_client import Client, handle_file

    from phonegrade.confidence import DEFAULT_ASK_MARGIN

    client = Client(running_app["url"], verbose=False)
    photo = gradable_photo
    result = client.predict(handle_file(str(photo)), api_name="/predict")
    assert set(result["side"]) == {"front", "back", "none"}
    assert sum(result["side"].values()) == pytest.approx(1.0, abs=1e-4)
    top = max(result["side"], key=result["side"].get)
    assert result["graded"] == (top == "front")
    if result["graded"]:
        assert set(result["scratch"]) == {"major_scratch", "minor_scratch", "no_scratch"} and result["note"] == ""
    else:
        assert result["scratch"] is None
        assert ("does not look like a phone" if top == "none" else f"looks like a phone's {top}") in result["note"]
    assert result["side_revision"].startswith("sha256:")
    # The app runs at the default ask margin: it asks exactly when a model's top two are closer than that.
    margins = [top_two_margin(probabilities) for probabilities in (result["side"], result["scratch"]) if probabilities]
    assert result["ask"] == (min(margins) < DEFAULT_ASK_MARGIN) == bool(result["ask_reason"])
    assert result["quality"]["gradable"] and any("small" in w for w in result["quality"]["warnings"])  # 96 px
    assert result["summary"].startswith({"front": "Front view", "back": "Back view",
                                         "none": "This does not look like a phone"}[top])

    flagged = client.predict(handle_file(str(photo)), "front", "minor_scratch", "a test", api_name="/flag")
    store = CorrectionStore(running_app["corrections"])
    stored = {r["record_id"]: r for r in store.records()}
    record = stored[flagged["record_id"]]
    assert record["corrected_side"] == "front" and record["corrected_scratch"] == "minor_scratch"
    # Without consent the record keeps the photo's pixel hash, not the photo; a flag unless it answers a question.
    assert record["image_path"] is None
    assert record["content_hash"] == keyed_hash(Image.open(photo), store.hash_key()) != content_hash(Image.open(photo))
    assert record["source"] == "flagged"
    answered = client.predict(handle_file(str(photo)), "front", "", "", True, True, api_name="/flag")
    record = {r["record_id"]: r for r in store.records()}[answered["record_id"]]
    assert record["source"] == "asked" and record["licence"] == "CC-BY-4.0"
    assert Image.open(record["image_path"]).tobytes() == Image.open(photo).convert("RGB").tobytes()


def test_api_explain_returns_the_heatmap_as_an_image_file(running_app, gradable_photo):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(running_app["url"], verbose=False)
    photo = gradable_photo
    path = client.predict(handle_file(str(photo)), "scratch", "", api_name="/explain")
    explained = Image.open(path)
    assert explained.format == "PNG" and explained.size == Image.open(photo).size
    with pytest.raises(AppError, match="unknown label 'cat' for the side model"):
        client.predict(handle_file(str(photo)), "side", "cat", api_name="/explain")


def test_api_predict_gives_no_grade_for_a_photo_too_poor_to_grade(running_app, tmp_path):
    from gradio_client import Client, handle_file

    black = tmp_path / "black.png"
    Image.new("RGB", (40, 40)).save(black)
    result = Client(running_app["url"], verbose=False).predict(handle_file(str(black)), api_name="/predict")
    assert result["summary"] == "Cannot grade this photo" and not result["quality"]["gradable"]
    # The side model's probabilities, as for every photo; no scratch grade and no question.
    assert set(result["side"]) == {"front", "back", "none"} and result["scratch"] is None
    assert not result["graded"] and not result["ask"] and "too poor to grade" in result["note"]
    assert any("too small to grade" in w for w in result["quality"]["warnings"])


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
    from phonegrade.grading import describe_training_data

    for task in ("side", "scratch"):
        model = load_model(DEFAULT_MODELS[task])
        described, crossval = describe_training_data(model), model.classifier.config.crossval
        assert described.startswith(f"{model.classifier.arch}") and "real photos" in described
        assert (f"5-fold cross-validated accuracy {crossval['accuracy']['mean']:.3f} ± "
                f"{crossval['accuracy']['std']:.3f} on {crossval['n_images']} images") in described
        # ... and how it did on photos of sources it never saw, the figure users with photos of their own meet.
        grouped = model.classifier.config.crossval_grouped
        assert f"{grouped['pooled']['accuracy']:.3f} on photos of sources it never saw" in described


def test_local_model_folders_are_shown_relative_to_the_working_directory(trained_side_model, monkeypatch):
    from phonegrade.grading import display_id

    monkeypatch.chdir(trained_side_model.parent)
    assert display_id(str(trained_side_model)) == trained_side_model.name
    assert load_model(str(trained_side_model)).model_id == trained_side_model.name
    assert display_id("user/side-model") == "user/side-model"


def test_the_examples_note_names_every_example_the_models_grade_wrong(grader, gradable_photo, tmp_path):
    from phonegrade.grading import examples_note, read_examples

    folder = tmp_path / "examples"
    folder.mkdir()
    for name in ("a-card.png", "a-phone.png", "unlabelled.png"):
        Image.open(gradable_photo).save(folder / name)
    (folder / "labels.csv").write_text("file,side,scratch\na-card.png,none,\na-phone.png,front,no_scratch\n")
    examples = read_examples(folder)
    assert [(e.side, e.scratch) for e in examples] == [("none", None), ("front", "no_scratch"), (None, None)]
    make_sure_of(grader.side.classifier, "none")
    note = examples_note(grader, examples, renders=False)
    assert "grade 1 of the 3 examples wrong: a-phone shows front view, no scratches; graded not a phone" in note
    assert "a-card" not in note and "renders" not in note
    make_sure_of(grader.side.classifier, "front")
    make_sure_of(grader.scratch.classifier, "no_scratch")
    note = examples_note(grader, examples, renders=True)
    assert note.startswith("<small>The examples are synthetic renders") and "a-card shows not a phone" in note
    assert "a-phone" not in note

    (folder / "labels.csv").write_text("file,side,scratch\na-card.png,tablet,\n")
    with pytest.raises(ConfigError, match="a-card.png has labels 'tablet'"):
        read_examples(folder)


def test_a_confident_grade_is_not_asked_about_and_an_unsure_one_is_at_the_same_margin(grader, gradable_photo):
    image = Image.open(gradable_photo)
    grader.ask_margin = 0.4
    make_sure_of(grader.side.classifier, "back")  # a back view: only the side model is asked about
    sure = grader.assess(image)
    assert top_two_margin(sure.prediction.side) > 0.99 and not sure.ask and sure.ask_reason == ""
    # Now back and none tie (the same output weights and bias, far above front's): the margin is below 0.4, and it
    # asks.
    output, labels = grader.side.classifier.net.head[-1], grader.side.classifier.labels
    with torch.no_grad():
        output.weight[labels.index("none")] = output.weight[labels.index("back")]
        output.bias[labels.index("none")] = output.bias[labels.index("back")]
    unsure = grader.assess(image)
    assert top_two_margin(unsure.prediction.side) < 0.4 and unsure.ask
    assert "The side model is unsure between" in unsure.ask_reason


def test_the_flag_limit_holds_each_client_to_its_share_of_a_sliding_window():
    from phonegrade.grading import FlagLimit

    now = [0.0]
    limit = FlagLimit(count=3, seconds=60, clock=lambda: now[0])
    for _ in range(3):
        limit.check("10.0.0.1")
    with pytest.raises(CorrectionError, match="at most 3 every 60 s; try again in 60 s"):
        limit.check("10.0.0.1")
    limit.check("10.0.0.2")  # another client is still served
    now[0] = 59.0
    with pytest.raises(CorrectionError):
        limit.check("10.0.0.1")
    now[0] = 60.5  # the first three have left the window
    limit.check("10.0.0.1")
    FlagLimit(count=0).check("anyone")  # 0: no limit


def test_a_burst_of_flags_from_one_client_is_limited_while_another_is_served(trained_side_model,
                                                                              trained_scratch_model, gradable_photo,
                                                                              tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from .conftest import serve_app

    with serve_app("--side-model", str(trained_side_model), "--scratch-model", str(trained_scratch_model),
                   "--corrections-dir", str(tmp_path / "corrections"), "--flag-limit", "3",
                   "--behind-proxy") as app:
        flooder = Client(app["url"], verbose=False, headers={"X-Forwarded-For": "203.0.113.7"})
        other = Client(app["url"], verbose=False, headers={"X-Forwarded-For": "198.51.100.2, 10.0.0.1"})
        for _ in range(3):
            flooder.predict(handle_file(str(gradable_photo)), "back", "", "", api_name="/flag")
        with pytest.raises(AppError, match="too many corrections from this address: at most 3 every 60 s"):
            flooder.predict(handle_file(str(gradable_photo)), "back", "", "", api_name="/flag")
        assert other.predict(handle_file(str(gradable_photo)), "back", "", "", api_name="/flag")["record_id"]
    assert len(CorrectionStore(tmp_path / "corrections").records()) == 4
