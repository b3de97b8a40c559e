import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from phonegrade import DEFAULT_MODELS, PhoneGradeClassifier
from phonegrade.errors import ImageLoadError, ModelLoadError


@pytest.fixture
def model_copy(trained_side_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained_side_model, folder, ignore=shutil.ignore_patterns("checkpoints"))
    return folder


def test_predict_accepts_paths_pil_images_bytes_and_tensors(trained_side_model, side_data):
    model = PhoneGradeClassifier.from_pretrained(trained_side_model)
    path = next((side_data / "val" / "back").iterdir())
    image = Image.open(path)
    as_path, as_pil, as_bytes = model.predict([path, image, path.read_bytes()])
    assert as_path == as_pil == as_bytes
    assert list(as_path) == ["front", "back", "none"] and sum(as_path.values()) == pytest.approx(1.0)
    tensor = model.transform(image.convert("RGB"))
    assert model.predict([tensor])[0] == pytest.approx(as_path)
    # A single image need not be wrapped in a list. A batch of one may take other CPU kernels than a batch of
    # three, so the last bits of the probabilities may differ.
    assert model.predict(path) == [pytest.approx(as_path)]


def test_preprocess_gives_the_pixels_predict_uses_for_paths_and_large_jpegs(trained_side_model, side_data, tmp_path):
    model = PhoneGradeClassifier.from_pretrained(trained_side_model)
    path = next((side_data / "val" / "front").iterdir())
    big = tmp_path / "big.jpg"
    Image.open(path).convert("RGB").resize((1200, 900)).save(big, quality=90)
    pixels = model.preprocess([path, big])
    assert pixels.shape == (2, 3, model.image_size, model.image_size)
    assert torch.equal(pixels[0], model.transform(Image.open(path).convert("RGB")))
    with torch.no_grad():
        from_pixels = torch.softmax(model(pixels), dim=1)
    assert from_pixels[1].tolist() == pytest.approx(list(model.predict(big)[0].values()), abs=1e-5)


def test_predict_handles_odd_modes_and_sizes(trained_side_model):
    model = PhoneGradeClassifier.from_pretrained(trained_side_model)
    odd = [Image.new("RGBA", (1, 1)), Image.new("CMYK", (400, 3)), Image.fromarray(np.zeros((5, 5), np.uint16))]
    assert len(model.predict(odd)) == 3


def test_predict_rejects_unreadable_input_clearly(trained_side_model):
    model = PhoneGradeClassifier.from_pretrained(trained_side_model)
    with pytest.raises(ImageLoadError):
        model.predict([b"not an image"])


def test_save_and_reload_round_trip(trained_side_model, tmp_path):
    model = PhoneGradeClassifier.from_pretrained(trained_side_model)
    model.save_pretrained(tmp_path / "again")
    again = PhoneGradeClassifier.from_pretrained(tmp_path / "again")
    pixels = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(model(pixels), again(pixels))


class _TouchOnUnpickle:
    """Unpickling this object creates `marker`: what a hostile checkpoint's code could do instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_pickled_checkpoint_is_refused_not_unpickled(model_copy, tmp_path):
    marker = tmp_path / "unpickled"
    (model_copy / "model.safetensors").unlink()
    torch.save({"head.weight": torch.zeros(3), "payload": _TouchOnUnpickle(marker)}, model_copy / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pytorch_model.bin, a pickled checkpoint.*safetensors only"):
        PhoneGradeClassifier.from_pretrained(model_copy)
    assert not marker.exists()
    # The file is a live payload: unpickling it, as torch.load without weights_only does, creates the marker.
    torch.load(model_copy / "pytorch_model.bin", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ("[]", "must hold a JSON object"),
    ('{"task": "side"}', "lacks 'arch'"),
])
def test_corrupt_config_is_a_clear_error(model_copy, content, message):
    (model_copy / "config.json").write_text(content)
    with pytest.raises(ModelLoadError, match=message):
        PhoneGradeClassifier.from_pretrained(model_copy)


def test_config_naming_an_unknown_arch_is_refused(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    (model_copy / "config.json").write_text(json.dumps({**config, "arch": "vgg16"}))
    with pytest.raises(ModelLoadError, match="unknown arch 'vgg16'"):
        PhoneGradeClassifier.from_pretrained(model_copy)


def test_config_labels_that_do_not_match_the_task_are_refused(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    (model_copy / "config.json").write_text(json.dumps({**config, "labels": ["a", "b", "c"]}))
    with pytest.raises(ModelLoadError, match="do not match task 'side'"):
        PhoneGradeClassifier.from_pretrained(model_copy)


def test_weights_that_do_not_fit_the_config_are_refused(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    (model_copy / "config.json").write_text(json.dumps({**config, "arch": "mobilenet_v2"}))
    with pytest.raises(ModelLoadError, match="weights do not fit config.json"):
        PhoneGradeClassifier.from_pretrained(model_copy)


def test_corrupt_weights_file_is_a_clear_error(model_copy):
    (model_copy / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="unreadable"):
        PhoneGradeClassifier.from_pretrained(model_copy)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not a model folder.*side-default, scratch-default"):
        PhoneGradeClassifier.from_pretrained(tmp_path / "absent")


def test_the_embedded_defaults_load_by_their_folder_names_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for task in ("side", "scratch"):
        model = PhoneGradeClassifier.from_pretrained(f"{task}-default")
        weights = Path(DEFAULT_MODELS[task]) / "model.safetensors"
        assert model.task == task and model.folder == Path(DEFAULT_MODELS[task])
        assert model.model_revision() == "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()[:12]


def test_a_local_folder_named_like_an_embedded_default_is_read_instead(model_copy, tmp_path, monkeypatch):
    model_copy.rename(tmp_path / "scratch-default")  # a side model, under the scratch default's name
    monkeypatch.chdir(tmp_path)
    model = PhoneGradeClassifier.from_pretrained("scratch-default")
    assert model.task == "side" and model.folder == Path("scratch-default")
