"""Real huggingface_hub / datasets client round trips against tests/hub_server.py on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")
huggingface_hub = pytest.importorskip("huggingface_hub")

from huggingface_hub import CommitScheduler, HfApi, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from PIL import Image  # noqa: E402

from tests.hub_server import FAKE_TOKEN, HubServer  # noqa: E402

# huggingface_hub's LFS upload (lfs.py) still passes raw bytes as `data=` to httpx2: client-side noise.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def no_external_network(monkeypatch):
    """Fail the test if anything resolves a host other than loopback (e.g. huggingface.co, s3, datasets-server)."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            attempts.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no network access to {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield attempts
    assert attempts == [], f"tried to reach non-loopback hosts: {attempts}"


@pytest.fixture
def hub(tmp_path, no_external_network):
    """A fresh HubServer with huggingface_hub and datasets pointed at it (caches under tmp_path)."""
    with HubServer() as server, server.patch_clients(hf_home=tmp_path / "hf-home"):
        yield server


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


def _model_folder(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"arch": "wearnet", "labels": ["front", "back"]}))
    (folder / "model.safetensors").write_bytes(os.urandom(1024 * 1024))
    (folder / "README.md").write_text("---\nlicense: mit\ntags:\n- phonegrade\n---\n# A model\n")
    return folder


def test_clients_are_pointed_at_the_server(hub):
    from huggingface_hub import constants

    assert hub.url == constants.ENDPOINT
    assert constants.HF_HUB_DISABLE_XET is True
    assert huggingface_hub.hf_api.api.endpoint == hub.url
    assert hub.url == datasets.config.HF_ENDPOINT
    assert os.environ["HF_ENDPOINT"] == hub.url
    assert os.environ["HF_TOKEN"] == FAKE_TOKEN
    assert HfApi().whoami()["name"] == "user"


def test_model_upload_download_and_revisions(hub, tmp_path):
    folder = _model_folder(tmp_path)
    api = HfApi()
    url = api.create_repo("user/phone-model")
    assert url.repo_id == "user/phone-model"
    assert api.create_repo("user/phone-model", exist_ok=True).repo_id == "user/phone-model"
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo("user/phone-model")
    assert conflict.value.response.status_code == 409

    first = api.upload_folder(repo_id="user/phone-model", folder_path=folder, commit_message="first upload")
    assert len(first.oid) == 40
    assert api.model_info("user/phone-model").sha == first.oid
    assert hub.head("user/phone-model") == first.oid
    assert sorted(api.list_repo_files("user/phone-model")) == [
        ".gitattributes", "README.md", "config.json", "model.safetensors"]
    # model.safetensors matches the LFS patterns: it went through the LFS batch + PUT protocol.
    assert ("POST", "/user/phone-model.git/info/lfs/objects/batch") in hub.requests
    weights = next(f for f in api.list_repo_tree("user/phone-model") if f.path == "model.safetensors")
    assert weights.lfs is not None and weights.lfs.size == 1024 * 1024

    snapshot = Path(snapshot_download("user/phone-model"))
    for name in ("config.json", "model.safetensors", "README.md"):
        assert (snapshot / name).read_bytes() == (folder / name).read_bytes(), name
    assert snapshot.name == first.oid  # the cache snapshot folder is named after the commit sha

    config_path = hf_hub_download("user/phone-model", "config.json")
    assert json.loads(Path(config_path).read_text())["arch"] == "wearnet"

    # A second commit moves main; the first sha still serves the old content.
    second = api.upload_file(path_or_fileobj=json.dumps({"arch": "wearnet", "labels": ["front"]}).encode(),
                             path_in_repo="config.json", repo_id="user/phone-model", commit_message="second")
    assert second.oid != first.oid
    assert api.model_info("user/phone-model").sha == second.oid
    assert api.model_info("user/phone-model", revision=first.oid).sha == first.oid
    assert [c.commit_id for c in api.list_repo_commits("user/phone-model")][:2] == [second.oid, first.oid]
    new = json.loads(Path(hf_hub_download("user/phone-model", "config.json")).read_text())
    old = json.loads(Path(hf_hub_download("user/phone-model", "config.json", revision=first.oid)).read_text())
    assert new["labels"] == ["front"] and old["labels"] == ["front", "back"]
    old_snapshot = Path(snapshot_download("user/phone-model", revision=first.oid))
    assert (old_snapshot / "config.json").read_bytes() == (folder / "config.json").read_bytes()
    # Files that did not change keep their bytes at the new revision.
    assert Path(hf_hub_download("user/phone-model", "model.safetensors")).read_bytes() == \
        (folder / "model.safetensors").read_bytes()


def test_regular_upload_mode_only(tmp_path, no_external_network):
    """lfs_patterns=() makes preupload answer "regular" for every file (content inlined, base64, in the commit)."""
    folder = _model_folder(tmp_path)
    with HubServer(lfs_patterns=()) as hub, hub.patch_clients(hf_home=tmp_path / "hf-home"):
        api = HfApi()
        api.create_repo("user/plain")
        info = api.upload_folder(repo_id="user/plain", folder_path=folder)
        assert not any(path.endswith("/info/lfs/objects/batch") for _, path in hub.requests)
        assert hub.files("user/plain", revision=info.oid)["model.safetensors"] == \
            (folder / "model.safetensors").read_bytes()
        snapshot = Path(snapshot_download("user/plain"))
        assert (snapshot / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()


def test_dataset_push_to_hub_and_load_dataset(hub):
    features = datasets.Features({
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=["front", "back", "none"]),
        "record_id": datasets.Value("string"),
    })
    colors = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 90)]
    ds = datasets.Dataset.from_dict(
        {"image": [Image.new("RGB", (8, 6), c) for c in colors], "label": [0, 1, 2, 1],
         "record_id": ["r0", "r1", "r2", "r3"]},
        features=features)
    info = ds.push_to_hub("user/phone-sides")
    assert HfApi().dataset_info("user/phone-sides").sha == info.oid
    files = HfApi().list_repo_files("user/phone-sides", repo_type="dataset")
    assert "README.md" in files and any(f.startswith("data/train-") and f.endswith(".parquet") for f in files)

    loaded = datasets.load_dataset("user/phone-sides", split="train")
    assert loaded.features["label"].names == ["front", "back", "none"]
    assert loaded["record_id"] == ["r0", "r1", "r2", "r3"]
    assert loaded["label"] == [0, 1, 2, 1]
    for row, color in zip(loaded, colors, strict=True):
        assert row["image"].size == (8, 6)
        assert row["image"].convert("RGB").getpixel((0, 0)) == color


def test_dataset_dict_push_to_hub(hub):
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"x": [1, 2, 3]}),
        "validation": datasets.Dataset.from_dict({"x": [10]}),
    })
    dd.push_to_hub("user/splits")
    loaded = datasets.load_dataset("user/splits")
    assert sorted(loaded) == ["train", "validation"]
    assert loaded["train"]["x"] == [1, 2, 3] and loaded["validation"]["x"] == [10]


def test_imagefolder_with_per_record_metadata(hub, tmp_path):
    labels = {"r000": "front", "r001": "back", "r002": "none"}
    colors = {"r000": (255, 0, 0), "r001": (0, 255, 0), "r002": (0, 0, 255)}
    folder = tmp_path / "upload"
    for record_id, label in labels.items():
        record = folder / "records" / record_id
        record.mkdir(parents=True)
        (record / "image.png").write_bytes(_png(colors[record_id]))
        (record / "metadata.jsonl").write_text(
            json.dumps({"file_name": "image.png", "label": label, "record_id": record_id, "grade": 3}) + "\n")
    api = HfApi()
    api.create_repo("user/records", repo_type="dataset")
    api.upload_folder(repo_id="user/records", repo_type="dataset", folder_path=folder)

    loaded = datasets.load_dataset("user/records", split="train")
    assert set(loaded.column_names) == {"image", "label", "record_id", "grade"}
    rows = sorted(loaded, key=lambda r: r["record_id"])
    assert [r["record_id"] for r in rows] == ["r000", "r001", "r002"]
    assert [r["label"] for r in rows] == ["front", "back", "none"]
    for row in rows:
        assert row["image"].convert("RGB").getpixel((0, 0)) == colors[row["record_id"]]


def test_branches_deletes_paths_info_and_filesystem(hub):
    api = HfApi()
    api.create_repo("user/tree", repo_type="dataset")
    api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="data/a.txt", repo_id="user/tree",
                    repo_type="dataset")
    api.upload_file(path_or_fileobj=b"b", path_in_repo="data/sub/b.txt", repo_id="user/tree", repo_type="dataset")

    infos = {i.path: i for i in api.get_paths_info("user/tree", ["data", "data/a.txt", "nope"], repo_type="dataset",
                                                    expand=True)}
    assert set(infos) == {"data", "data/a.txt"}
    assert infos["data/a.txt"].size == 10 and infos["data/a.txt"].last_commit is not None
    top = {e.path: type(e).__name__ for e in api.list_repo_tree("user/tree", "data", repo_type="dataset")}
    assert top == {"data/sub": "RepoFolder", "data/a.txt": "RepoFile"}

    fs = huggingface_hub.HfFileSystem()
    assert sorted(fs.glob("datasets/user/tree/data/**/*.txt")) == [
        "datasets/user/tree/data/a.txt", "datasets/user/tree/data/sub/b.txt"]
    with fs.open("datasets/user/tree/data/a.txt", "rb", block_size=4) as f:  # Range requests
        f.seek(3)
        assert f.read(4) == b"3456"
    assert fs.info("datasets/user/tree/data/a.txt")["size"] == 10

    api.create_branch("user/tree", branch="dev", repo_type="dataset")
    api.upload_file(path_or_fileobj=b"dev only", path_in_repo="dev.txt", repo_id="user/tree", repo_type="dataset",
                    revision="dev")
    refs = api.list_repo_refs("user/tree", repo_type="dataset")
    assert sorted(b.name for b in refs.branches) == ["dev", "main"]
    assert "dev.txt" in api.list_repo_files("user/tree", repo_type="dataset", revision="dev")
    assert "dev.txt" not in api.list_repo_files("user/tree", repo_type="dataset")
    api.delete_branch("user/tree", branch="dev", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_files("user/tree", repo_type="dataset", revision="dev")

    api.delete_file("data/a.txt", repo_id="user/tree", repo_type="dataset")
    api.delete_folder("data/sub", repo_id="user/tree", repo_type="dataset")
    assert api.list_repo_files("user/tree", repo_type="dataset") == [".gitattributes"]
    api.delete_repo("user/tree", repo_type="dataset")
    assert not api.repo_exists("user/tree", repo_type="dataset")

    api.create_repo("user/secret", private=True)
    assert api.model_info("user/secret").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info("user/secret")


@pytest.mark.slow  # ~5 s: the client retries the failed preupload five times
def test_commit_scheduler_pushes_and_recovers_after_outage(hub, tmp_path, caplog):
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "a.jsonl").write_text('{"n": 1}\n')
    # every=60 minutes: only the start-up push and the manual triggers below run during the test.
    scheduler = CommitScheduler(repo_id="user/logs", repo_type="dataset", folder_path=watched, every=60)
    try:
        scheduler.trigger().result(timeout=30)
        assert hub.files("user/logs", repo_type="dataset")["a.jsonl"] == b'{"n": 1}\n'

        (watched / "b.jsonl").write_text('{"n": 2}\n')
        hub.set_offline(True)
        with pytest.raises(HfHubHTTPError) as outage:
            scheduler.trigger().result(timeout=60)  # preupload is retried 5x (Retry-After: 0 -> ~5 s)
        assert outage.value.response.status_code == 503
        assert "Error while pushing to Hub" in caplog.text  # the scheduler also logs it
        assert "b.jsonl" not in hub.files("user/logs", repo_type="dataset")

        hub.set_offline(False)
        scheduler.trigger().result(timeout=30)
        files = hub.files("user/logs", repo_type="dataset")
        assert files["b.jsonl"] == b'{"n": 2}\n' and files["a.jsonl"] == b'{"n": 1}\n'
        assert scheduler.trigger().result(timeout=30) is None  # nothing new: no empty commit
        assert hub.commit_titles("user/logs", repo_type="dataset") == [
            "Scheduled Commit", "Scheduled Commit", "initial commit"]
    finally:
        scheduler.stop()


def test_errors(hub, tmp_path):
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("user/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info("user/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/does-not-exist", "config.json")

    api.create_repo("user/present")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("user/present", "missing.json")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("user/present", revision="no-such-branch")
    assert not api.file_exists("user/present", "missing.json")
    assert api.repo_exists("user/present") and not api.repo_exists("user/absent")

    anonymous = HfApi(token=False)
    with pytest.raises(HfHubHTTPError) as no_token_create:
        anonymous.create_repo("user/anonymous")
    assert no_token_create.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as no_token_upload:
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="user/present")
    assert no_token_upload.value.response.status_code == 401
    assert not hub.repo_exists("user/anonymous")
    assert "x.txt" not in hub.files("user/present")
    # Reads of public repos need no token.
    assert anonymous.model_info("user/present").sha == hub.head("user/present")


@pytest.mark.slow  # ~5 s: the uncached download is retried five times
def test_offline_download_uses_cache_or_fails(hub, tmp_path):
    api = HfApi()
    api.create_repo("user/cached")
    api.upload_file(path_or_fileobj=b'{"v": 1}', path_in_repo="config.json", repo_id="user/cached")
    cached = hf_hub_download("user/cached", "config.json")
    hub.set_offline(True)
    # A cached file comes back at once (one HEAD, no retry); an uncached one is retried with backoff
    # (~5 s with the server's Retry-After: 0) and then raises LocalEntryNotFoundError.
    assert hf_hub_download("user/cached", "config.json") == cached
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download("user/cached", "other.json")
    hub.set_offline(False)


def test_patch_clients_restores_settings(tmp_path, no_external_network):
    from huggingface_hub import constants

    before = (constants.ENDPOINT, constants.HF_HUB_CACHE, huggingface_hub.hf_api.api.endpoint,
              datasets.config.HF_ENDPOINT, datasets.config.USE_PARQUET_EXPORT, os.environ.get("HF_ENDPOINT"))
    with HubServer() as server:
        with server.patch_clients(hf_home=tmp_path / "home"):
            assert str(tmp_path / "home" / "hub") == constants.HF_HUB_CACHE
            assert datasets.config.USE_PARQUET_EXPORT is False
        after = (constants.ENDPOINT, constants.HF_HUB_CACHE, huggingface_hub.hf_api.api.endpoint,
                 datasets.config.HF_ENDPOINT, datasets.config.USE_PARQUET_EXPORT, os.environ.get("HF_ENDPOINT"))
    assert after == before
    env = server.client_env(tmp_path / "home")
    assert env["HF_ENDPOINT"] == server.url and env["HF_HUB_DISABLE_XET"] == "1"


def test_restart_on_same_port_serves_new_state(tmp_path, no_external_network):
    """A fixed port (e.g. chosen before importing the clients) can be reused; stale keep-alive connections
    to a stopped server are dropped, so the new server's state is what the client sees."""
    with HubServer() as first, first.patch_clients(hf_home=tmp_path / "home"):
        HfApi().create_repo("user/old")
        assert HfApi().repo_exists("user/old")
        port = first.port
    with HubServer(port=port) as second, second.patch_clients(hf_home=tmp_path / "home"):
        assert second.url == first.url
        assert not HfApi().repo_exists("user/old")
        HfApi().create_repo("user/new")
        assert HfApi().repo_exists("user/new")


def test_subprocess_uses_client_env(tmp_path, no_external_network):
    """A child process gets everything from environment variables read at import (HF_ENDPOINT, HF_TOKEN, ...);
    NO_PROXY keeps loopback reachable even with the dead proxies conftest.run_train sets."""
    code = (
        "from pathlib import Path\n"
        "from huggingface_hub import HfApi, hf_hub_download\n"
        "api = HfApi()\n"
        "api.create_repo('user/from-child')\n"
        "api.upload_file(path_or_fileobj=b'child', path_in_repo='note.txt', repo_id='user/from-child')\n"
        "print(Path(hf_hub_download('user/from-child', 'note.txt')).read_text())\n"
    )
    with HubServer() as server:
        env = {**os.environ, **server.client_env(tmp_path / "child-home"),
               "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("child")
        assert server.files("user/from-child")["note.txt"] == b"child"
    assert (tmp_path / "child-home" / "hub" / "models--user--from-child").is_dir()
