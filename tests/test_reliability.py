"""Reliability and security: hostile uploads, bad files on the command line, faults while storing corrections,
what reaches the corrections folder, tokens, and a small load run. Loopback only; every wait is bounded."""

import contextlib
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from phonegrade.corrections import (
    FIELDS,
    CorrectionStore,
    HubPusher,
    Prediction,
    keyed_hash,
    load_correction_rows,
)
from phonegrade.errors import ImageLoadError
from phonegrade.images import load_image

from .conftest import ROOT, free_port, run_train, serve_app
from .hub_server import HubServer, client_env

# ---------------------------------------------------------------- odd files

# Unreadable uploads, and the message each must give (every message also names no path and holds no traceback).
BAD = {
    "text.jpg": "not a readable image \\(unknown or unsupported file format\\)",
    "empty.png": "not a readable image \\(the file is empty\\)",
    "truncated.jpg": "not a readable image \\(.*truncated",
    "truncated.png": "not a readable image \\(.*truncated",
    "garbage.gif": "not a readable image",
    "bomb.png": "image is too large",  # 30000×30000: Pillow itself refuses it at open
    "bomb-9k.png": "image is too large \\(9000×9000",  # above our limit, below Pillow's
    "damaged.heic": "not a readable image \\(a damaged HEIC/HEIF photo\\)",
}
# Odd but valid: each must be graded.
GOOD = ["tiny.png", "wide.png", "tall.png", "rgba.png", "la.png", "palette.png", "cmyk.jpg", "gray16.png",
        "gray.png", "animated.gif", "animated.webp", "exif-rotated.jpg", "photo.heic"]


def write_odd_files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for name, fmt in (("truncated.jpg", "JPEG"), ("truncated.png", "PNG")):
        buffer = io.BytesIO()
        noise.save(buffer, fmt)
        (folder / name).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "text.jpg").write_text("this is a text file with an image's extension\n" * 20)
    (folder / "empty.png").write_bytes(b"")
    (folder / "garbage.gif").write_bytes(b"GIF89a" + bytes(range(256)) * 4)
    Image.new("1", (30000, 30000)).save(folder / "bomb.png")
    Image.new("1", (9000, 9000)).save(folder / "bomb-9k.png")
    (folder / "damaged.heic").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(200))
    noise.save(folder / "photo.heic", format="HEIF", quality=90)  # as an iPhone saves its photos

    Image.new("RGB", (1, 1), "red").save(folder / "tiny.png")
    Image.new("RGB", (10000, 2), "red").save(folder / "wide.png")
    Image.new("RGB", (2, 10000), "red").save(folder / "tall.png")
    Image.new("RGBA", (32, 24), (0, 0, 0, 0)).save(folder / "rgba.png")  # fully transparent: stored white
    noise.convert("LA").save(folder / "la.png")
    palette = noise.convert("P")
    palette.save(folder / "palette.png", transparency=0)
    noise.convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(np.full((20, 30), 40000, dtype=np.uint16)).save(folder / "gray16.png")
    noise.convert("L").save(folder / "gray.png")
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "lime", "blue")]
    for name in ("animated.gif", "animated.webp"):
        frames[0].save(folder / name, save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise
    Image.new("RGB", (40, 20), "blue").save(folder / "exif-rotated.jpg", exif=exif)
    return folder


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory) -> Path:
    return write_odd_files(tmp_path_factory.mktemp("odd-files"))


def assert_clear(message: str) -> None:
    """A message for people: no traceback, no file system path, no Python object repr."""
    assert "Traceback" not in message and "File \"" not in message
    assert not re.search(r"(^|[\s'(])/(tmp|work|root|home|usr|etc)\b", message), message
    assert "gradio" not in message.lower() and " at 0x" not in message, message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # bomb-9k.png, refused by load_image
def test_load_image_gives_the_documented_result_for_each_odd_file(odd_files):
    for name, pattern in BAD.items():
        with pytest.raises(ImageLoadError, match=pattern):
            load_image(odd_files / name, name="upload")
    for name in GOOD:
        assert load_image(odd_files / name).mode == "RGB"
    assert load_image(odd_files / "exif-rotated.jpg").size == (20, 40)  # upright
    assert load_image(odd_files / "animated.gif").getpixel((0, 0)) == (255, 0, 0)  # the first frame


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt TIFF metadata
def test_mutated_images_decode_or_fail_with_image_load_error():
    """Fuzzing: corrupt PNG/JPEG/GIF/WebP/TIFF/BMP bytes never raise anything but ImageLoadError, nor hang."""
    rng = random.Random(0)
    base = Image.fromarray(np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8))
    start = time.time()
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"):
        buffer = io.BytesIO()
        base.save(buffer, fmt)
        for _ in range(250):
            data = bytearray(buffer.getvalue())
            for _ in range(rng.randint(1, 6)):
                pos = rng.randrange(len(data))
                if rng.random() < 0.7:
                    data[pos] = rng.randrange(256)
                else:
                    del data[pos:pos + rng.randint(1, 64)]
            try:
                assert load_image(bytes(data)).mode == "RGB"
            except ImageLoadError as err:
                assert_clear(str(err))
    assert time.time() - start < 60


# ---------------------------------------------------------------- the app: uploads

def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def _http():
    import httpx

    return httpx.Client(trust_env=False, timeout=60)  # loopback: no proxy


def upload(url: str, filename: str, data: bytes):
    """Upload like the page does (the client chooses the file name); returns the HTTP response."""
    with _http() as http:
        return http.post(f"{url}gradio_api/upload", files={"files": (filename, data)})


def run_event(url: str, fn_index: int, data: list) -> dict:
    """Run one event through Gradio's queue like the page does; returns the process_completed message."""
    session = secrets.token_hex(8)
    with _http() as http:
        joined = http.post(f"{url}gradio_api/queue/join",
                           json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None})
        assert joined.status_code == 200, joined.text
        with http.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                    return json.loads(line[5:])
    raise AssertionError("the event did not complete")


def fn_index(url: str, *, api_name: str | None = None, elem_id: str | None = None, event: str = "change") -> int:
    with _http() as http:
        config = http.get(f"{url}config").json()
    if api_name:
        return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
    component = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    return next(d["id"] for d in config["dependencies"] if [component, event] in d["targets"])


def file_data(path: str, name: str) -> dict:
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture(scope="module")
def client(running_app):
    return _client(running_app["url"])


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_uploads_get_a_clear_message_from_the_api(running_app, client, odd_files, side_data, name):
    from gradio_client import handle_file

    with pytest.raises(Exception) as caught:
        client.predict(handle_file(str(odd_files / name)), api_name="/predict")
    assert re.search(BAD[name], str(caught.value)), str(caught.value)
    assert_clear(str(caught.value))
    # The worker is not stuck: the next request is answered.
    photo = next((side_data / "val" / "front").iterdir())
    assert set(client.predict(handle_file(str(photo)), api_name="/predict")["side"]) == {"front", "back", "none"}


@pytest.mark.parametrize("name", GOOD)
def test_odd_but_valid_uploads_are_graded_by_the_api(client, odd_files, name):
    from gradio_client import handle_file

    result = client.predict(handle_file(str(odd_files / name)), api_name="/predict")
    assert sum(result["side"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name", ["text.jpg", "empty.png", "truncated.jpg", "bomb.png", "damaged.heic"])
def test_bad_uploads_get_the_same_clear_message_on_the_page(running_app, odd_files, name):
    """The page's gr.Image event, driven over Gradio's queue protocol as the browser does."""
    url = running_app["url"]
    uploaded = upload(url, name, (odd_files / name).read_bytes())
    assert uploaded.status_code == 200
    done = run_event(url, fn_index(url, elem_id="photo"), [file_data(uploaded.json()[0], name)])
    assert not done["success"]
    assert re.search(BAD[name], done["output"]["error"]), done["output"]
    assert_clear(done["output"]["error"])


def test_stored_photos_are_upright_flattened_rgb_of_the_first_frame(running_app, client, odd_files):
    from gradio_client import handle_file

    store = CorrectionStore(running_app["corrections"])
    expected = {"exif-rotated.jpg": ((20, 40), (0, 0, 255)), "rgba.png": ((32, 24), (255, 255, 255)),
                "animated.gif": ((32, 32), (255, 0, 0)), "tall.png": ((2, 10000), (255, 0, 0))}
    for name, (size, pixel) in expected.items():
        upright = load_image(odd_files / name)
        assert upright.mode == "RGB" and upright.size == size, name
        assert np.abs(np.subtract(upright.getpixel((0, 0)), pixel)).max() <= 3, name
        record_id = client.predict(handle_file(str(odd_files / name)), "back", "", "", api_name="/flag")["record_id"]
        (record,) = [r for r in store.records() if r["record_id"] == record_id]
        # /flag asks no consent yet, so the record keeps no photo: its size and pixel hash are the upright photo's.
        assert record["image_path"] is None and (record["width"], record["height"]) == size, name
        assert record["content_hash"] == keyed_hash(upright, store.hash_key()), name


def test_uploads_above_the_size_limit_are_refused(running_app, tmp_path):
    from gradio_client import handle_file

    url = running_app["url"]
    with _http() as http:
        limit = http.get(f"{url}config").json()["max_file_size"]
    assert limit == 20 * 2**20
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(limit))
    with pytest.raises(Exception, match="maximum file size"):  # gradio_client checks the limit it was told
        _client(url).predict(handle_file(str(big)), api_name="/predict")
    refused = upload(url, "big.png", big.read_bytes())  # a client that does not check: the server refuses
    assert refused.status_code == 413 and "maximum allowed size" in refused.text


def test_client_supplied_paths_are_not_read(running_app, tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), "red").save(secret)
    url = running_app["url"]
    for index in (fn_index(url, api_name="predict"), fn_index(url, elem_id="photo")):
        done = run_event(url, index, [file_data(str(secret), "secret.png")])
        assert not done["success"] and not done["output"].get("error")  # refused by Gradio, no detail given


# ---------------------------------------------------------------- the app: what is stored

def test_hostile_comment_and_file_name_store_only_clean_content_under_generated_names(running_app):
    url = running_app["url"]
    marker = "HOSTILE-" + secrets.token_hex(4)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", f"<script>{marker}</script>")
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 200, 30)).save(buffer, "PNG", pnginfo=info)
    payload = buffer.getvalue() + marker.encode()  # trailing bytes after the PNG's end
    name = f"../../etc/{marker}.png"
    uploaded = upload(url, name, payload)
    assert uploaded.status_code == 200
    cached = Path(uploaded.json()[0])
    assert cached.name == f"{marker}.png" and ".." not in cached.parts  # Gradio keeps the base name only
    comment = f"<script>alert(1)</script><img src=x onerror=alert(2)>ok \x00\x1b[31m\r ../../etc/passwd {'A' * 900}"
    # Every input, as the raw protocol needs: photo, side, scratch, comment, consent, asked.
    done = run_event(url, fn_index(url, api_name="flag"), [file_data(str(cached), name), "back", "", comment, False,
                                                           False])
    assert done["success"], done
    record_id = done["output"]["data"][0]["record_id"]

    root = Path(running_app["corrections"])
    assert not Path("/etc", f"{marker}.png").exists()
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        assert marker not in relative
        assert re.fullmatch(r"README\.md|\.pushed|\.staging|\.hash-key|records|labels_only"
                            r"|(records|labels_only)/\d{4}-\d\d-\d\d"
                            r"|records/\d{4}-\d\d-\d\d/[0-9T]+-[0-9a-f]{12}-[0-9a-f]{6}(/image\.png|/metadata\.jsonl)?"
                            r"|labels_only/\d{4}-\d\d-\d\d/[0-9T]+-[0-9a-f]{12}-[0-9a-f]{6}(/record\.jsonl)?",
                            relative), relative
    # Without consent the record keeps no photo, so none of the uploaded bytes.
    (folder,) = [p for p in root.glob("labels_only/*/*") if p.name == record_id]
    assert sorted(p.name for p in folder.iterdir()) == ["record.jsonl"]
    metadata = json.loads((folder / "record.jsonl").read_text())
    assert set(metadata) == set(FIELDS) - {"file_name"}  # only the documented fields: no file name or path
    assert metadata["content_hash"] == keyed_hash(Image.open(io.BytesIO(payload)), CorrectionStore(root).hash_key())
    assert not any(marker in str(value) for value in metadata.values())
    stored = metadata["comment"]  # plain text: tags and control characters removed, bounded
    assert not re.search(r"[<>\x00-\x09\x0b-\x1f]|script|onerror", stored) and len(stored) <= 500
    assert "ok" in stored


def test_every_event_shares_one_bounded_queue(trained_side_model, trained_scratch_model, tmp_path):
    from phonegrade.demo import build_demo
    from phonegrade.grading import Grader, load_model

    grader = Grader(load_model(str(trained_side_model)), load_model(str(trained_scratch_model)),
                    CorrectionStore(tmp_path))
    demo = build_demo(grader, concurrency=3, queue_size=50, upload_ttl_s=600)
    events = [fn for fn in demo.fns.values() if fn.fn is not None]
    # The page: grade (upload, button), heatmap (after each), correction; the API: predict, explain, flag.
    assert len(events) == 8 and {fn.concurrency_id for fn in events} == {"grader"}
    assert demo._queue.default_concurrency_limit == 3 and demo._queue.max_size == 50
    assert demo.delete_cache == (150, 600)


# ---------------------------------------------------------------- the app: faults

@pytest.fixture(scope="module")
def restricted_app(trained_side_model, trained_scratch_model, tmp_path_factory):
    """The app with a file where its corrections folder should be, a 50 kB upload limit, and uploads kept 2 s."""
    tmp = tmp_path_factory.mktemp("restricted-app")
    (tmp / "not-a-folder").write_text("a file, not a folder")
    with serve_app("--side-model", str(trained_side_model), "--scratch-model", str(trained_scratch_model),
                   "--corrections-dir", str(tmp / "not-a-folder"), "--upload-dir", str(tmp / "uploads"),
                   "--upload-ttl", "2", "--max-upload-mb", "0.05", "--concurrency", "2") as app:
        yield {**app, "uploads": tmp / "uploads"}


def test_unusable_corrections_folder_refuses_flags_clearly_and_keeps_predicting(restricted_app, side_data):
    from gradio_client import handle_file

    client = _client(restricted_app["url"])
    photo = handle_file(str(next((side_data / "val" / "back").iterdir())))
    with pytest.raises(Exception, match="could not save the correction \\(.+\\); predictions still work") as caught:
        client.predict(photo, "front", "", "", api_name="/flag")
    assert_clear(str(caught.value))
    assert set(client.predict(photo, api_name="/predict")["side"]) == {"front", "back", "none"}


def test_upload_limit_is_configurable(restricted_app, tmp_path):
    url = restricted_app["url"]
    with _http() as http:
        assert http.get(f"{url}config").json()["max_file_size"] == int(0.05 * 2**20)
    refused = upload(url, "photo.png", bytes(60_000))
    assert refused.status_code == 413


def test_uploads_leave_gradios_cache_after_their_time_to_live(restricted_app, side_data):
    from gradio_client import handle_file

    photo = next((side_data / "val" / "front").iterdir())
    _client(restricted_app["url"]).predict(handle_file(str(photo)), api_name="/predict")
    cached = [p for p in restricted_app["uploads"].rglob(photo.name)]
    assert cached, "the upload should be in the app's --upload-dir"
    deadline = time.time() + 15
    while any(p.exists() for p in cached) and time.time() < deadline:
        time.sleep(0.5)
    assert not any(p.exists() for p in cached)


def test_stopping_the_app_pushes_queued_corrections_and_deletes_uploads(trained_side_model, trained_scratch_model,
                                                                       odd_files, tmp_path):
    from gradio_client import handle_file

    uploads, corrections = tmp_path / "uploads", tmp_path / "corrections"
    examples = {p.name for p in (ROOT / "data" / "examples").glob("*.png")}  # cached for the page, and kept

    def cached():
        return sorted(p.relative_to(uploads).parts[1:] for p in uploads.rglob("*") if p.is_file()
                      and p.name not in examples)

    with HubServer() as hub, serve_app("--side-model", str(trained_side_model), "--scratch-model",
                                       str(trained_scratch_model), "--corrections-dir", str(corrections),
                                       "--upload-dir", str(uploads), "--corrections-repo", "user/on-stop",
                                       "--push-every", "3600", env=hub.client_env(tmp_path / "hf-home")) as app:
        client = _client(app["url"])
        client.predict(handle_file(str(odd_files / "tiny.png")), api_name="/predict")
        record_id = client.predict(handle_file(str(odd_files / "wide.png")), "back", "", "", api_name="/flag")
        assert cached() == [("tiny.png",), ("wide.png",)]  # <content hash>/<name>: no stray file per request
        app["process"].terminate()  # SIGTERM, as from `docker stop`
        assert app["process"].wait(timeout=60) == 0
    assert cached() == []
    assert (corrections / ".pushed").read_text().split() == [record_id["record_id"]]


@contextlib.contextmanager
def unreachable_hub(kind: str):
    """An HF_ENDPOINT that never answers: a closed loopback port (connections refused at once) or a loopback socket
    that accepts connections and never answers (a hung Hub or proxy). Yields (url, accepted sockets)."""
    if kind == "closed-port":
        yield f"http://127.0.0.1:{free_port()}", []
        return
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept():
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(server.accept()[0])  # held open, never read from or written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        done.set()
        thread.join()
        for connection in [*accepted, server]:
            connection.close()


def _pushed_record_ids(hub: HubServer, repo_id: str) -> set[str]:
    return {path.split("/")[2] for path in hub.files(repo_id, "dataset")
            if path.endswith(("/metadata.jsonl", "/record.jsonl"))}


@pytest.mark.parametrize("kind", ["closed-port", "hanging-socket"])
def test_corrections_push_to_an_unreachable_hub_fails_soon_and_keeps_the_records(kind, tmp_path):
    store = CorrectionStore(tmp_path / "corrections").ensure()
    ids = {store.add(Image.new("RGB", (9, 9), colour), Prediction({"front": 1.0, "back": 0.0, "none": 0.0}, {}),
                     "back") for colour in ("red", "blue")}
    with unreachable_hub(kind) as (url, _):
        env = {**os.environ, **client_env(url, tmp_path / "hf-home"), "PHONEGRADE_HUB_TIMEOUT": "2"}
        started = time.time()
        result = subprocess.run([sys.executable, "-m", "phonegrade.cli", "corrections", "push", "--source",
                                 str(store.root), "--repo", "user/later"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
        assert time.time() - started < 30  # start-up included; without a time limit a hung Hub holds it forever
    assert result.returncode == 1 and "pushed 0 of 2 pending records to user/later; the rest stay queued" in \
        result.stdout, result.stdout + result.stderr
    with HubServer() as hub, hub.patch_clients(hf_home=tmp_path / "hf-home-2"):  # the Hub is back
        assert HubPusher(store, "user/later").push_all() == 2
        assert _pushed_record_ids(hub, "user/later") == ids


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_app_stops_soon_while_a_push_hangs_and_keeps_the_record(trained_side_model, trained_scratch_model, side_data,
                                                               tmp_path, stop_signal):
    from gradio_client import handle_file

    corrections = tmp_path / "corrections"
    with unreachable_hub("hanging-socket") as (url, accepted), \
            serve_app("--side-model", str(trained_side_model), "--scratch-model", str(trained_scratch_model),
                      "--corrections-dir", str(corrections), "--corrections-repo", "user/hung", "--push-every", "1",
                      env=client_env(url, tmp_path / "hf-home")) as app:
        photo = handle_file(str(next((side_data / "val" / "back").iterdir())))
        record_id = _client(app["url"]).predict(photo, "back", "", "", api_name="/flag")["record_id"]
        deadline = time.time() + 30
        while not accepted and time.time() < deadline:  # a background push is now waiting for the Hub
            time.sleep(0.2)
        assert accepted, "the app should have tried to push the record"
        app["process"].send_signal(stop_signal)
        try:
            # The push holds its lock for up to PHONEGRADE_HUB_TIMEOUT (30 s); the last push waits for it 10 s.
            assert app["process"].wait(timeout=25) == 0
        except subprocess.TimeoutExpired:
            app["process"].kill()
            raise AssertionError("the app did not stop within 25 s of the signal") from None
    assert not (corrections / ".pushed").exists()
    with HubServer() as hub, hub.patch_clients(hf_home=tmp_path / "hf-home-2"):  # pushed by the next start
        assert HubPusher(CorrectionStore(corrections), "user/hung").push_all() == 1
        assert _pushed_record_ids(hub, "user/hung") == {record_id}


WRITER = """
import sys
from PIL import Image
from phonegrade.corrections import CorrectionStore, Prediction

store = CorrectionStore(sys.argv[1]).ensure()
prediction = Prediction({"front": 0.2, "back": 0.7, "none": 0.1}, {})
for i in range(1_000_000):
    image = Image.effect_noise((256, 256), 20 + i % 60).convert("RGB")
    print(store.add(image, prediction, "front", comment=f"write {i}", consent=True), flush=True)  # acknowledged
"""


def test_killed_writer_loses_no_acknowledged_record_and_leaves_none_corrupt(tmp_path):
    root = tmp_path / "corrections"
    acknowledged = []
    for round_ in range(2):  # killed, restarted on the same folder, killed again
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], cwd=ROOT, stdout=subprocess.PIPE,
                                  text=True)
        try:
            for count, line in enumerate(writer.stdout, 1):
                acknowledged.append(line.strip())
                if count == 6 + round_:
                    break
            time.sleep(random.Random(round_).uniform(0, 0.03))  # land somewhere inside the next write
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
    # "Restart": what a new app process would find.
    store = CorrectionStore(root)
    stored = {r["record_id"]: r for r in store.records()}
    assert set(acknowledged) <= set(stored)
    for record_id, record in stored.items():
        folder = Path(record["image_path"]).parent
        assert sorted(p.name for p in folder.iterdir()) == ["image.png", "metadata.jsonl"], record_id
        assert Image.open(record["image_path"]).size == (256, 256)
    rows = load_correction_rows(root)
    assert sorted(r["record_id"] for r in rows) == sorted(stored)
    assert all(row["image"].size == (256, 256) for row in rows)
    store.clean_staging(older_than_s=0)
    assert list((root / ".staging").iterdir()) == []


FULL_DISK_WRITER = """
import resource, sys
from PIL import Image
from phonegrade.corrections import CorrectionStore, Prediction
from phonegrade.errors import CorrectionError

store = CorrectionStore(sys.argv[1]).ensure()
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # no file may grow past 1000 bytes: a full disk
try:
    store.add(Image.effect_noise((64, 64), 50).convert("RGB"), Prediction({"front": 1.0}, {}), "back", consent=True)
except CorrectionError as err:
    print(err)
"""


def test_full_disk_is_a_clear_correction_error_and_leaves_nothing_behind(tmp_path):
    result = subprocess.run([sys.executable, "-c", FULL_DISK_WRITER, str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.match(r"could not save the correction \(File too large\); predictions still work", result.stdout)
    assert CorrectionStore(tmp_path).records() == [] and list((tmp_path / ".staging").iterdir()) == []
    assert not list((tmp_path / "records").rglob("*.png"))


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def app_on_tmpfs(trained_side_model, trained_scratch_model, tmp_path_factory):
    """The app with its corrections folder on a 2 MB tmpfs the test can fill or make read-only (needs root)."""
    corrections = tmp_path_factory.mktemp("tmpfs-corrections")
    if os.geteuid() != 0 or not shutil.which("mount") or not _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs",
                                                                      str(corrections)):
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        with serve_app("--side-model", str(trained_side_model), "--scratch-model", str(trained_scratch_model),
                       "--corrections-dir", str(corrections)) as app:
            yield {**app, "corrections": corrections}
    finally:
        subprocess.run(["umount", "-l", str(corrections)], capture_output=True, timeout=30)


def _flag_fails_clearly_then_recovers(app, side_data, message: str, break_it, fix_it):
    from gradio_client import handle_file

    client = _client(app["url"])
    photo = handle_file(str(next((side_data / "val" / "front").iterdir())))
    before = len(CorrectionStore(app["corrections"]).records())
    break_it()
    try:
        with pytest.raises(Exception, match=f"could not save the correction \\({message}\\); predictions still work"):
            client.predict(photo, "back", "", "", api_name="/flag")
        assert set(client.predict(photo, api_name="/predict")["side"]) == {"front", "back", "none"}
    finally:
        fix_it()
    assert len(CorrectionStore(app["corrections"]).records()) == before  # nothing half-written became a record
    record_id = client.predict(photo, "back", "", "", api_name="/flag")["record_id"]
    assert record_id in {r["record_id"] for r in CorrectionStore(app["corrections"]).records()}


def test_read_only_corrections_folder(app_on_tmpfs, side_data):
    folder = str(app_on_tmpfs["corrections"])
    _flag_fails_clearly_then_recovers(app_on_tmpfs, side_data, "Read-only file system",
                                      lambda: _mount("-o", "remount,ro", folder),
                                      lambda: _mount("-o", "remount,rw", folder))


def test_full_corrections_disk(app_on_tmpfs, side_data):
    filler = app_on_tmpfs["corrections"] / "filler"

    def fill():
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(bytes(65536))
            except OSError:
                pass

    _flag_fails_clearly_then_recovers(app_on_tmpfs, side_data, "No space left on device", fill, filler.unlink)


# ---------------------------------------------------------------- the command line on bad files

@pytest.fixture(scope="module")
def data_with_bad_files(side_data, odd_files, tmp_path_factory) -> Path:
    """The side data set with every odd file added to train/front (bad ones must be skipped, odd ones used)."""
    data = tmp_path_factory.mktemp("data-with-bad-files") / "data"
    shutil.copytree(side_data, data)
    for name in [*BAD, *GOOD]:
        shutil.copy(odd_files / name, data / "train" / "front" / name)
    return data


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "phonegrade.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "https_proxy": "http://127.0.0.1:9"})


def test_cli_predict_reports_each_bad_file_and_grades_the_rest(trained_side_model, odd_files):
    result = _cli("predict", "--model", str(trained_side_model), str(odd_files), "--json", "--workers", "0",
                  "--no-progress")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = {Path(r["image"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(lines) == set(BAD) | set(GOOD)
    for name, pattern in BAD.items():
        assert re.search(pattern, lines[name]["error"]), lines[name]
    for name in GOOD:
        assert lines[name]["label"] in ("front", "back", "none")


def test_cli_evaluate_skips_bad_files_with_a_warning_and_counts_them(trained_side_model, data_with_bad_files,
                                                                    tmp_path):
    result = _cli("evaluate", "--model", str(trained_side_model), "--data", str(data_with_bad_files), "--split",
                  "all", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"skipped {len(BAD)} unreadable files" in result.stdout
    assert result.stderr.count("skipping unreadable image") == len(BAD)
    n_images = len(list(data_with_bad_files.rglob("*.*")))
    assert json.loads((tmp_path / "metrics.json").read_text())["n_val"] == n_images - len(BAD)


def test_training_skips_bad_files_with_a_warning_and_counts_them(data_with_bad_files, tmp_path):
    result = run_train(["--task", "side", "--arch", "wearnet", "--data", str(data_with_bad_files), "--output-dir",
                        str(tmp_path), "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0"])
    assert f"skipped {len(BAD)} unreadable files" in result.stdout
    assert result.stderr.count("skipping unreadable image") == len(BAD)
    for name in BAD:
        assert name in result.stderr
    assert (tmp_path / "model.safetensors").is_file()


# ---------------------------------------------------------------- secrets and code

def test_no_token_is_written_to_cards_datasets_or_logs(side_data, tmp_path):
    token = "hf_" + secrets.token_hex(16)
    corrections = CorrectionStore(tmp_path / "corrections").ensure()
    corrections.add(Image.new("RGB", (9, 9), "red"), Prediction({"front": 1.0, "back": 0.0, "none": 0.0}, {}),
                    "back", comment="token test")
    with HubServer(root=tmp_path / "hub") as hub:
        env = {**os.environ, **hub.client_env(tmp_path / "hf-home", token=token)}
        trained = run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir",
                             str(tmp_path / "model"), "--epochs", "1", "--image-size", "32", "--workers", "0",
                             "--push-to-hub", "user/token-test"], env=env)
        pushed = subprocess.run([sys.executable, "-m", "phonegrade.cli", "corrections", "push", "--source",
                                 str(corrections.root), "--repo", "user/token-corrections"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert "pushed to" in trained.stdout and pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert any(p.is_file() for p in (tmp_path / "hub" / "blobs").rglob("*"))  # what the Hub now holds
    for output in (trained.stdout, trained.stderr, pushed.stdout, pushed.stderr):
        assert token not in output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_sources_never_unpickle_or_run_remote_code():
    sources = [*sorted((ROOT / "phonegrade").glob("*.py")), ROOT / "app.py"]
    for path in sources:
        text = path.read_text()
        assert "trust_remote_code" not in text, path
        assert not re.search(r"^\s*(import pickle|from pickle|import dill|import joblib)", text, re.M), path
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in call.group(1), f"{path}: {call.group(0)}"
    for path in (ROOT / "phonegrade" / "hub.py", ROOT / "phonegrade" / "demo.py", ROOT / "app.py"):
        assert "torch.load" not in path.read_text(), path  # models are served from safetensors only


# ---------------------------------------------------------------- load

def test_a_small_load_run_has_no_errors_and_stores_each_flag_once(running_app):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load.py"), "--url", running_app["url"],
                             "--corrections-dir", str(running_app["corrections"]), "--clients", "5", "--requests",
                             "4", "--flag-every", "2", "--timeout", "120"], cwd=ROOT, capture_output=True, text=True,
                            timeout=180, env={**os.environ, "no_proxy": "127.0.0.1,localhost"})
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["requests"] == 20 and summary["errors"] == 0
    assert summary["flags_acknowledged"] == 10 and summary["flags_stored_once"] is True


def test_the_app_is_still_serving(running_app, restricted_app):
    for app in (running_app, restricted_app):
        assert app["process"].poll() is None


def test_heic_photos_as_iphones_take_them_are_read_upright(odd_files, tmp_path):
    photo = load_image(odd_files / "photo.heic")
    assert photo.mode == "RGB" and photo.size == (64, 64)
    # Rotated by its EXIF orientation, as a phone held upright records it.
    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    wide.save(tmp_path / "rotated.heic", format="HEIF", exif=exif.tobytes())
    assert load_image(tmp_path / "rotated.heic").size == (20, 40)
