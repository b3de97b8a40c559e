"""Hub round trips with the real huggingface_hub / datasets clients against tests/hub_server.py on 127.0.0.1."""

import json

import pytest
import torch
from PIL import Image

from phonegrade import PhoneGradeClassifier
from phonegrade.corrections import CorrectionStore, HubPusher, Prediction, load_correction_rows
from phonegrade.hub import ModelLoadError, push_model_folder

from .conftest import run_train
from .hub_server import HubServer


@pytest.fixture
def hub(tmp_path):
    with HubServer() as server, server.patch_clients(hf_home=tmp_path / "hf-home"):
        yield server


def test_training_pushes_a_model_that_loads_by_repo_id(hub, side_data, tmp_path):
    out = tmp_path / "model"
    result = run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir", str(out),
                        "--epochs", "1", "--image-size", "32", "--workers", "0", "--push-to-hub", "user/side"],
                       env=hub.client_env(tmp_path / "hf-child"))
    assert "pushed to" in result.stdout
    remote = PhoneGradeClassifier.from_pretrained("user/side")
    local = PhoneGradeClassifier.from_pretrained(out)
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(remote(pixels), local(pixels))
    from huggingface_hub import HfApi

    info = HfApi().model_info("user/side")
    assert remote.revision == info.sha
    files = {s.rfilename for s in info.siblings}
    assert {"model.safetensors", "config.json", "README.md", "metrics.json"} <= files
    assert not any(f.startswith("checkpoints/") for f in files)  # resumable state stays local


def test_from_pretrained_pins_a_revision(hub, trained_side_model, tmp_path):
    from huggingface_hub import HfApi

    first = push_model_folder(trained_side_model, "user/pinned")
    first_sha = HfApi().model_info("user/pinned").sha
    config = json.loads((trained_side_model / "config.json").read_text())
    changed = tmp_path / "changed"
    PhoneGradeClassifier({**config}).save_pretrained(changed)  # fresh random weights, same config
    push_model_folder(changed, "user/pinned")
    assert first and HfApi().model_info("user/pinned").sha != first_sha
    old = PhoneGradeClassifier.from_pretrained("user/pinned", revision=first_sha)
    pixels = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(old(pixels), PhoneGradeClassifier.from_pretrained(trained_side_model)(pixels))


def test_missing_repo_and_unreachable_hub_are_clear_errors(hub):
    with pytest.raises(ModelLoadError, match="no such model repo"):
        PhoneGradeClassifier.from_pretrained("user/absent")
    hub.set_offline(True)
    with pytest.raises(ModelLoadError, match="could not download user/absent"):
        PhoneGradeClassifier.from_pretrained("user/absent")


def _store_with_records(root, n=3):
    store = CorrectionStore(root).ensure()
    prediction = Prediction({"front": 0.1, "back": 0.8, "none": 0.1}, {})
    ids = [store.add(Image.new("RGB", (12, 9), (40 * i, 90, 200)), prediction, corrected_side="front",
                     models={"side_model": "user/side"}) for i in range(n)]
    return store, ids


def test_corrections_push_and_load_dataset_round_trip(hub, tmp_path):
    store, ids = _store_with_records(tmp_path / "corrections")
    pusher = HubPusher(store, "user/corrections")
    assert pusher.push_all() == 3 and pusher.pending() == []
    rows = load_correction_rows("user/corrections")
    assert sorted(r["record_id"] for r in rows) == sorted(ids)
    local = {r["record_id"]: r for r in load_correction_rows(store.root)}
    for row in rows:
        assert row["image"].tobytes() == local[row["record_id"]]["image"].tobytes()
        assert row["corrected_side"] == "front" and row["side_model"] == "user/side"
    from huggingface_hub import hf_hub_download

    card = open(hf_hub_download("user/corrections", "README.md", repo_type="dataset")).read()
    assert "# phonegrade corrections" in card and "user/corrections" in card


def test_unreachable_hub_keeps_corrections_queued_until_it_is_back(hub, tmp_path):
    store, ids = _store_with_records(tmp_path / "corrections", n=2)
    pusher = HubPusher(store, "user/queued")
    hub.set_offline(True)
    assert pusher.push_once() == 0 and len(pusher.pending()) == 2 and pusher.last_error
    hub.set_offline(False)
    assert pusher.push_all() == 2
    store.add(Image.new("RGB", (5, 5)), Prediction({"front": 1.0, "back": 0.0, "none": 0.0}, {}), "back")
    # A new pusher (as after an app restart) only sends what is not up yet.
    assert HubPusher(store, "user/queued").push_all() == 1
    assert len(load_correction_rows("user/queued")) == 3
