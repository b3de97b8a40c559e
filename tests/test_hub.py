"""Hub round trips with the real huggingface_hub / datasets clients against tests/hub_server.py on 127.0.0.1."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from phonegrade import PhoneGradeClassifier
from phonegrade.corrections import CorrectionStore, HubPusher, Prediction, load_correction_rows
from phonegrade.data import load_splits
from phonegrade.errors import DataError, ModelLoadError
from phonegrade.hub import push_model_folder

from .conftest import run_train
from .hub_server import HubServer, free_port, patch_clients


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


def test_pushing_over_a_model_the_repo_holds_is_refused_before_training_unless_forced(hub, side_data, tmp_path):
    common = ["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--epochs", "1", "--image-size", "32",
              "--workers", "0", "--push-to-hub", "user/guarded"]
    env = hub.client_env(tmp_path / "hf-child")
    run_train([*common, "--output-dir", str(tmp_path / "first")], env=env)  # an empty repo: pushed
    first = hub.files("user/guarded")["model.safetensors"]
    result = run_train([*common, "--output-dir", str(tmp_path / "second")], env=env, check=False)
    assert result.returncode == 2 and "already holds a model" in result.stderr and "--force" in result.stderr
    assert not (tmp_path / "second" / "model.safetensors").exists()  # refused before training, not after
    assert hub.files("user/guarded")["model.safetensors"] == first
    run_train([*common, "--output-dir", str(tmp_path / "third"), "--seed", "3", "--force"], env=env)
    assert hub.files("user/guarded")["model.safetensors"] != first


def test_from_pretrained_pins_a_revision(hub, trained_side_model, tmp_path):
    from huggingface_hub import HfApi

    first = push_model_folder(trained_side_model, "user/pinned")
    first_sha = HfApi().model_info("user/pinned").sha
    config = json.loads((trained_side_model / "config.json").read_text())
    changed = tmp_path / "changed"
    PhoneGradeClassifier({**config}).save_pretrained(changed)  # fresh random weights, same config
    push_model_folder(changed, "user/pinned", replace=True)
    assert first and HfApi().model_info("user/pinned").sha != first_sha
    old = PhoneGradeClassifier.from_pretrained("user/pinned", revision=first_sha)
    pixels = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(old(pixels), PhoneGradeClassifier.from_pretrained(trained_side_model)(pixels))
    assert old.revision == first_sha


def test_the_revision_shown_is_the_commit_loaded_even_offline(hub, trained_side_model, monkeypatch):
    from huggingface_hub import HfApi, constants

    push_model_folder(trained_side_model, "user/shown")
    sha = HfApi().model_info("user/shown").sha
    assert PhoneGradeClassifier.from_pretrained("user/shown").revision == sha
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # from the cache alone: no request is made
    assert PhoneGradeClassifier.from_pretrained("user/shown").revision == sha


def test_missing_repo_and_unreachable_hub_are_clear_errors(hub):
    with pytest.raises(ModelLoadError, match="no such model repo"):
        PhoneGradeClassifier.from_pretrained("user/absent")
    hub.set_offline(True)
    with pytest.raises(ModelLoadError, match="could not download user/absent"):
        PhoneGradeClassifier.from_pretrained("user/absent")


def test_a_dataset_id_on_an_unreachable_hub_is_a_clear_error(tmp_path):
    # A refused connection is the client library's own error, not one of huggingface_hub's.
    message = "user/photos: no such local folder, and as a Hub dataset id: could not reach the Hub"
    with patch_clients(f"http://127.0.0.1:{free_port()}", hf_home=tmp_path / "hf-home"), \
            pytest.raises(DataError, match=message):
        load_splits("user/photos", "side")


def test_a_missing_nested_folder_is_not_looked_up_on_the_hub(tmp_path):
    with patch_clients(f"http://127.0.0.1:{free_port()}", hf_home=tmp_path / "hf-home"), \
            pytest.raises(DataError, match="runs/renders/seed7: no such folder"):
        load_splits("runs/renders/seed7", "side")


def _store_with_records(root, n=3):
    store = CorrectionStore(root).ensure()
    prediction = Prediction({"front": 0.1, "back": 0.8, "none": 0.1}, {})
    ids = [store.add(Image.new("RGB", (12, 9), (40 * i, 90, 200)), prediction, corrected_side="front",
                     models={"side_model": "user/side"}, consent=True) for i in range(n)]
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

    card = Path(hf_hub_download("user/corrections", "README.md", repo_type="dataset")).read_text()
    assert "# phonegrade corrections" in card and "user/corrections" in card


def test_records_without_a_photo_go_up_as_their_own_config_and_load_without_an_image(hub, tmp_path):
    from huggingface_hub import hf_hub_download

    store, ids = _store_with_records(tmp_path / "corrections", n=2)
    label_only = store.add(Image.new("RGB", (7, 7), "green"), Prediction({"front": 0.9, "back": 0.05, "none": 0.05},
                                                                        {}), corrected_side="none")
    assert HubPusher(store, "user/mixed").push_all() == 3
    uploaded = hub.files("user/mixed", repo_type="dataset")
    assert sum(name.endswith("/image.png") for name in uploaded) == 2
    assert [name for name in uploaded if label_only in name] == [
        f"labels_only/{label_only[:4]}-{label_only[4:6]}-{label_only[6:8]}/{label_only}/record.jsonl"]
    rows = {r["record_id"]: r for r in load_correction_rows("user/mixed")}
    assert set(rows) == {*ids, label_only}
    assert rows[label_only]["image"] is None and rows[label_only]["licence"] is None
    assert all(rows[i]["image"].size == (12, 9) and rows[i]["licence"] == "CC-BY-4.0" for i in ids)
    card = Path(hf_hub_download("user/mixed", "README.md", repo_type="dataset")).read_text()
    assert "license: cc-by-4.0" in card and "config_name: default" in card


def test_a_removal_made_while_the_hub_is_unreachable_is_carried_out_at_the_next_push(hub, tmp_path, capsys):
    from phonegrade.cli import main as cli_main

    store, ids = _store_with_records(tmp_path / "corrections", n=3)
    assert HubPusher(store, "user/takedown").push_all() == 3
    hub.set_offline(True)
    assert cli_main(["corrections", "remove", "--id", ids[1], "--source", str(store.root),
                     "--repo", "user/takedown"]) == 1
    assert "stays queued" in capsys.readouterr().out
    assert ids[1] not in {r["record_id"] for r in store.records()}  # gone here at once
    hub.set_offline(False)
    assert ids[1] in {r["record_id"] for r in load_correction_rows("user/takedown")}  # not yet from the Hub
    pusher = HubPusher(store, "user/takedown")  # as after a restart of the app
    assert list(pusher.pending_removals()) == [ids[1]]
    store.add(Image.new("RGB", (5, 5)), Prediction({"front": 1.0, "back": 0.0, "none": 0.0}, {}), "back",
              consent=True)
    assert pusher.push_all() == 1 and pusher.pending_removals() == {}
    assert hub.commit_titles("user/takedown", repo_type="dataset")[:2] == ["Add 1 corrections", "Remove 1 corrections"]
    assert not any(ids[1] in name for name in hub.files("user/takedown", repo_type="dataset"))
    assert sorted(r["record_id"] for r in load_correction_rows("user/takedown")) == sorted(
        r["record_id"] for r in store.records())


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


def test_corrections_go_up_in_commits_of_fewer_than_100_files(hub, tmp_path):
    store, ids = _store_with_records(tmp_path / "corrections", n=120)
    pusher = HubPusher(store, "user/many", batch_size=500)  # asked for more: still capped
    assert pusher.push_all() == 120 and pusher.pending() == []
    changed = hub.files_changed_per_commit("user/many", repo_type="dataset")
    pushes = changed[:-1]  # the oldest commit is the repo's creation
    assert len(pushes) == 3 and max(pushes) < 100
    uploaded = hub.files("user/many", repo_type="dataset")
    assert sum(name.endswith("/metadata.jsonl") for name in uploaded) == 120
    assert sum(name.endswith("/image.png") for name in uploaded) == 120


def test_hub_data_and_corrections_are_read_at_one_recorded_commit(hub, side_data, tmp_path):
    import datasets
    from huggingface_hub import HfApi

    from phonegrade.config import ModelConfig
    from phonegrade.data import load_splits, model_validation_split

    images = [Image.new("RGB", (16, 16), (i * 9, 255 - i * 9, 0)) for i in range(24)]
    labels = ["front", "back", "none"] * 8
    first = datasets.Dataset.from_dict({"image": images[:15], "label": labels[:15]}).cast_column("image",
                                                                                                datasets.Image())
    first.push_to_hub("user/photos")
    data_sha = HfApi().dataset_info("user/photos").sha
    store, _ = _store_with_records(tmp_path / "corrections", n=2)
    HubPusher(store, "user/fixes").push_all()
    fixes_sha = HfApi().dataset_info("user/fixes").sha

    out = tmp_path / "model"
    run_train(["--task", "side", "--arch", "wearnet", "--data", "user/photos", "--corrections", "user/fixes",
               "--output-dir", str(out), "--epochs", "1", "--image-size", "16", "--batch-size", "4", "--workers", "0"],
              env=hub.client_env(tmp_path / "hf-child"))
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["name"] == "user/photos" and config["data"]["revision"] == data_sha
    assert config["corrections"]["revision"] == fixes_sha and config["corrections"]["source"] == "user/fixes"
    card = (out / "README.md").read_text()
    assert data_sha in card and fixes_sha in card and "- user/photos" in card  # the card's `datasets:` list

    # New photos on the main branch later: the model's own validation split is still the one it was scored on.
    datasets.Dataset.from_dict({"image": images, "label": labels}).cast_column(
        "image", datasets.Image()).push_to_hub("user/photos")
    assert len(load_splits("user/photos", "side").val) != config["metrics"]["n_val"]
    again = model_validation_split(ModelConfig.from_dict(config), "user/photos")
    assert again.revision == data_sha
    assert len(again.val) == config["metrics"]["n_val"]


def test_the_corrections_repo_is_created_private_unless_asked_for_public(hub, tmp_path):
    from huggingface_hub import HfApi

    from phonegrade.cli import main as cli_main

    stores = [_store_with_records(tmp_path / name, n=1)[0] for name in ("a", "b", "c")]
    HubPusher(stores[0], "user/quiet").push_all()  # as the demo's background pusher makes it
    assert HfApi().dataset_info("user/quiet").private
    assert cli_main(["corrections", "push", "--source", str(stores[1].root), "--repo", "user/open", "--public"]) == 0
    assert not HfApi().dataset_info("user/open").private
    assert cli_main(["corrections", "push", "--source", str(stores[2].root), "--repo", "user/closed"]) == 0
    assert HfApi().dataset_info("user/closed").private
