"""The static site that grades in the browser (`phonegrade web`): what it writes, and, in headless chromium with
onnxruntime-web from npm (`make test` installs it), that it grades real photos as PhoneGradeClassifier.predict
does."""

import base64
import functools
import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import pytest

from phonegrade import DEFAULT_MODELS, PhoneGradeClassifier
from phonegrade.cli import main as cli_main
from phonegrade.web import ORT_INTEGRITY, ORT_SCRIPT, ORT_VERSION

from .conftest import REQUIRE_BROWSER, ROOT, serve_app
from .test_browser import BROWSER_ARGS

# Where `make test` installs onnxruntime-web (npm install --prefix build/ort-web onnxruntime-web@VERSION).
ORT_WEB = Path(os.environ.get("PHONEGRADE_ORT_WEB", ROOT / "build" / "ort-web"))
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="module")
def ort_web() -> Path:
    package = ORT_WEB / "node_modules" / "onnxruntime-web"
    if (package / "package.json").is_file():
        return ORT_WEB
    reason = f"needs onnxruntime-web@{ORT_VERSION} from npm in {ORT_WEB} (make test installs it)"
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{reason}; {REQUIRE_BROWSER}=1 says this test must run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cdn_site(tmp_path_factory) -> Path:
    """A site built without a local onnxruntime-web: it loads the pinned release from the CDN."""
    site = tmp_path_factory.mktemp("cdn") / "site"
    assert cli_main(["web", "--out", str(site), "--ask-margin", "0.3"]) == 0
    return site


def test_the_site_without_a_local_onnxruntime_loads_the_pinned_release_with_its_integrity_hash(cdn_site):
    site = cdn_site
    assert {p.name for p in site.iterdir()} == {"index.html", "grade.js", "preprocess.js", "side.onnx",
                                               "scratch.onnx", "site.json"}
    page = (site / "index.html").read_text()
    assert (f'src="https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_VERSION}/dist/{ORT_SCRIPT}" '
            f'integrity="{ORT_INTEGRITY}" crossorigin="anonymous"') in page
    config = json.loads((site / "site.json").read_text())
    side = PhoneGradeClassifier.from_pretrained(DEFAULT_MODELS["side"])
    assert config["models"]["side"]["labels"] == list(side.labels) and config["ask_margin"] == 0.3
    assert config["models"]["side"]["preprocessing"] == side.preprocessing.to_config()
    assert config["flag_url"] is None  # no demo named: the page offers no report and sends nothing


def test_the_demo_serves_the_site_beside_its_page(cdn_site, tmp_path):
    import urllib.request

    with serve_app("--web", str(cdn_site), "--corrections-dir", str(tmp_path / "corrections")) as app:
        page = urllib.request.urlopen(app["url"] + "web/", timeout=30).read().decode()
        assert "<title>phonegrade</title>" in page and ORT_INTEGRITY in page
        config = json.loads(urllib.request.urlopen(app["url"] + "web/site.json", timeout=30).read())
        assert config["ask_margin"] == 0.3
        assert "gradio" in urllib.request.urlopen(app["url"], timeout=30).read().decode().lower()  # the page too


def test_a_folder_without_onnxruntime_web_is_refused_clearly(tmp_path, capsys):
    assert cli_main(["web", "--out", str(tmp_path / "site"), "--ort-from", str(tmp_path)]) == 2
    assert f"npm install onnxruntime-web@{ORT_VERSION}" in capsys.readouterr().err


def test_the_pinned_integrity_hash_is_that_of_the_npm_release(ort_web):
    dist = ort_web / "node_modules" / "onnxruntime-web"
    assert json.loads((dist / "package.json").read_text())["version"] == ORT_VERSION
    digest = base64.b64encode(hashlib.sha384((dist / "dist" / ORT_SCRIPT).read_bytes()).digest()).decode()
    assert f"sha384-{digest}" == ORT_INTEGRITY


def photos_to_grade(tmp_path: Path) -> list[Path]:
    """Real photos of each side class and of cracked and clean screens from ../shared when it is there, else
    synthetic renders."""
    if SHARED.is_dir():
        picked = []
        for folder in ("side-real-extra/front", "side-real-extra/back", "side-real-extra/none",
                       "scratch-real-extra/major_scratch", "scratch-real-extra/no_scratch"):
            picked += sorted((SHARED / folder).glob("*.jp*g"))[:3]
        if picked:
            return picked
    from phonegrade.synth import write_synthetic_dataset

    write_synthetic_dataset("side", tmp_path / "renders", per_class=3, size=320, seed=5, progress=False)
    return sorted((tmp_path / "renders").glob("*/*/*.png"))


@pytest.fixture(scope="module")
def served_site(ort_web, tmp_path_factory):
    site = tmp_path_factory.mktemp("web") / "site"
    assert cli_main(["web", "--out", str(site), "--ort-from", str(ort_web)]) == 0

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def test_the_page_grades_photos_on_the_device_as_the_python_models_do(served_site, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    photos = photos_to_grade(tmp_path)
    side = PhoneGradeClassifier.from_pretrained(DEFAULT_MODELS["side"])
    scratch = PhoneGradeClassifier.from_pretrained(DEFAULT_MODELS["scratch"])
    differences, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone's screen
            page.on("request", lambda request: requests.append(request.url))
            page.goto(served_site)
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
            for photo in photos:
                page.evaluate("window.phonegradeResult = undefined")
                page.set_input_files("#photo", str(photo))
                page.wait_for_function("window.phonegradeResult !== undefined", timeout=60_000)
                result = page.evaluate("window.phonegradeResult")
                expected_side = side.predict([photo])[0]
                top = max(expected_side, key=expected_side.get)
                assert max(result["side"], key=result["side"].get) == top, photo
                differences += [abs(result["side"][k] - expected_side[k]) for k in expected_side]
                if top == "front":
                    expected_scratch = scratch.predict([photo])[0]
                    assert max(result["scratch"], key=result["scratch"].get) == max(
                        expected_scratch, key=expected_scratch.get), photo
                    differences += [abs(result["scratch"][k] - expected_scratch[k]) for k in expected_scratch]
                else:  # a back is not graded; for none the page says it does not look like a phone
                    assert result["scratch"] is None
                    if top == "none":
                        assert "does not look like a phone" in page.locator("#summary").inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
        finally:
            browser.close()
    assert max(differences) <= 0.05 and sum(differences) / len(differences) <= 0.01
    assert all(url.startswith(served_site) or url.startswith("data:") for url in requests)  # nothing leaves


def test_a_correction_leaves_the_device_only_after_consent_to_the_demo_serving_the_site(ort_web, chromium, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from phonegrade.corrections import CorrectionStore

    site, corrections = tmp_path / "site", tmp_path / "corrections"
    # "/": the demo that serves the site at /web/ receives its corrections (same origin).
    assert cli_main(["web", "--out", str(site), "--ort-from", str(ort_web), "--flag-url", "/"]) == 0
    photo = photos_to_grade(tmp_path)[0]
    with serve_app("--web", str(site), "--corrections-dir", str(corrections)) as app, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(app["url"] + "web/")
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
            page.set_input_files("#photo", str(photo))
            page.wait_for_function("window.phonegradeResult !== undefined", timeout=60_000)
            page.select_option("#side-fix", "none")
            page.click("#send")  # consent not ticked: nothing is sent
            expect(page.locator("#flag-status")).to_contain_text("Tick the box")
            assert CorrectionStore(corrections).records() == []
            page.check("#consent")
            page.click("#send")
            expect(page.locator("#flag-status")).to_contain_text("Sent, thank you", timeout=30_000)
        finally:
            browser.close()
    (record,) = CorrectionStore(corrections).records()
    assert record["corrected_side"] == "none" and record["photo_stored"] is True


def test_the_page_warns_about_capture_quality_where_the_python_check_does(served_site, chromium, tmp_path):
    from PIL import Image, ImageEnhance, ImageFilter
    from playwright.sync_api import sync_playwright

    from phonegrade.images import load_image
    from phonegrade.quality import measure_quality

    photo = load_image(photos_to_grade(tmp_path)[0])
    variants = {"as is": photo, "blurred": photo.filter(ImageFilter.GaussianBlur(6)),
                "dark": ImageEnhance.Brightness(photo).enhance(0.15),
                "small": photo.resize((120, round(120 * photo.height / photo.width))),
                "black": Image.new("RGB", (400, 300), (3, 3, 3))}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(served_site)
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
            for name, image in variants.items():
                path = tmp_path / f"{name}.png"
                image.save(path)
                page.evaluate("window.phonegradeResult = undefined")
                page.set_input_files("#photo", str(path))
                page.wait_for_function("window.phonegradeResult !== undefined", timeout=60_000)
                measured = page.evaluate("window.phonegradeQuality")
                expected = measure_quality(path)
                assert measured["warnings"] == list(expected.warnings), name
                assert measured["gradable"] == (not expected.too_poor_to_grade), name
                assert measured["darkness"] == pytest.approx(expected.darkness, abs=0.01), name
                assert measured["glare"] == pytest.approx(expected.glare, abs=0.01), name
                assert measured["sharpness"] == pytest.approx(expected.sharpness, rel=0.05, abs=0.5), name
                if not measured["gradable"]:
                    assert page.locator("#summary").inner_text() == "Cannot grade this photo"
        finally:
            browser.close()
