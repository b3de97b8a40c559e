"""The demo in a real browser: headless Debian chromium driven by Playwright."""

import re
from pathlib import Path

import pytest
from PIL import Image

from phonegrade.corrections import CorrectionStore

from .conftest import ROOT, serve_app

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "test-artifacts"


PHOTO = ROOT / "data" / "examples" / "synthetic-front-minor-scratches.png"  # the README screenshot's photo
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


def ask_margin_for(photo: Path) -> float:
    """The default ask margin, raised (if need be) just above the models' closest call on `photo`: the page then
    asks about it whatever the embedded models are."""
    from phonegrade import DEFAULT_MODELS, PhoneGradeClassifier
    from phonegrade.confidence import DEFAULT_ASK_MARGIN, top_two_margin

    probabilities = [PhoneGradeClassifier.from_pretrained(DEFAULT_MODELS[task]).predict([str(photo)])[0]
                     for task in ("side", "scratch")]
    return min(1.0, max(DEFAULT_ASK_MARGIN, min(map(top_two_margin, probabilities)) + 0.01))


@pytest.fixture(scope="module")
def default_app(chromium, tmp_path_factory):
    """`python app.py` on the embedded default models, as `make demo` serves it (its page is docs/demo.png)."""
    corrections = tmp_path_factory.mktemp("browser-corrections")
    with serve_app("--corrections-dir", str(corrections), "--ask-margin", str(ask_margin_for(PHOTO))) as app:
        yield {**app, "corrections": corrections}


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def grade(page, photo: Path) -> None:
    from playwright.sync_api import expect

    page.locator("#photo input[type=file]").set_input_files(str(photo))
    expect(page.locator("#summary")).to_contain_text("%", timeout=60_000)


# Visible elements that reach past the window's right edge, other than inside a box that scrolls sideways (where all
# of them can be reached): a page that is wider than the screen, or content cut off by its container.
ELEMENTS_PAST_THE_EDGE = """() => [...document.querySelectorAll("body *")].filter(element => {
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || box.right <= window.innerWidth + 1) return false;
    for (let up = element.parentElement; up && up !== document.body; up = up.parentElement)
        if (["auto", "scroll"].includes(getComputedStyle(up).overflowX)) return false;
    return true;
}).map(element => `${element.tagName.toLowerCase()}#${element.id}.${element.className}`)"""


def horizontal_overflow(page) -> tuple[int, list[str]]:
    """How many pixels the page is wider than the window, and the elements reaching past its edge."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth"), page.evaluate(
        ELEMENTS_PAST_THE_EDGE)


def test_grade_ask_explain_and_answer_in_the_browser(browser, default_app, tmp_path):
    from playwright.sync_api import expect

    store = CorrectionStore(default_app["corrections"])
    before = {r["record_id"] for r in store.records()}
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(default_app["url"])
    expect(page.locator("#examples-note")).to_contain_text("synthetic renders")
    grade(page, PHOTO)
    # The sentence first ("Front view — minor scratches, 62 %"), the question, then the heatmap over the photo.
    expect(page.locator("#summary")).to_contain_text(
        re.compile(r"(Front view|Back view|does not look like a phone).*\d+ %"))
    expect(page.locator("#ask")).to_contain_text("Not sure about this one")
    expect(page.locator("#ask")).to_contain_text("model is unsure between")
    expect(page.locator("#heatmap img")).to_be_visible(timeout=60_000)
    expect(page.locator("#heatmap")).to_contain_text("Heatmap: where the")
    # Details and models in accordions; models named as the working directory sees them, nothing of the disk.
    page.locator("#details").get_by_text("Details", exact=True).click()
    for label in ("front", "back", "none"):
        expect(page.locator("#side").get_by_text(label, exact=True).first).to_be_visible()
    page.locator("#models").get_by_text("Models", exact=True).click()
    expect(page.get_by_text("trained on").first).to_be_visible()
    expect(page.get_by_text("data/models/side-default", exact=True)).to_be_visible()
    assert str(ROOT) not in page.locator("body").inner_text()
    page.locator("#details").get_by_text("Details", exact=True).click()
    page.locator("#models").get_by_text("Models", exact=True).click()
    page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)  # docs/demo.png

    # Asked: the form is open, filled in with the grade; the answer changes the side and contributes the photo.
    expect(page.locator("#submit-correction")).to_have_text("Send answer")
    expect(page.locator("#consent input")).not_to_be_checked()  # contributing the photo is opt-in
    page.locator("#side-fix input").click()
    page.get_by_role("option", name="back", exact=True).click()
    page.locator("#comment textarea").fill("browser test")
    page.locator("#consent input").check()
    page.locator("#submit-correction").click()
    expect(page.locator("#flag-status")).to_contain_text("Saved with the photo", timeout=30_000)
    new = [r for r in store.records() if r["record_id"] not in before]
    assert len(new) == 1 and new[0]["source"] == "asked"
    assert new[0]["corrected_side"] == "back" and new[0]["comment"] == "browser test"
    assert Path(new[0]["image_path"]).is_file()

    # A small photo: graded, with a hint to retake it.
    small = tmp_path / "small.png"
    Image.open(PHOTO).resize((120, 120)).save(small)
    grade(page, small)
    expect(page.locator("#quality")).to_contain_text("Retake hint")
    expect(page.locator("#quality")).to_contain_text("The photo is small (120×120 pixels)")
    page.close()


def not_a_phone_photo() -> Path:
    """The bundled example the default side model is surest is not a phone (the rendered look-alike)."""
    from phonegrade import DEFAULT_MODELS, EXAMPLES_DIR, PhoneGradeClassifier

    side = PhoneGradeClassifier.from_pretrained(DEFAULT_MODELS["side"])
    photos = sorted(Path(EXAMPLES_DIR).glob("*.png"))
    probabilities = side.predict(photos)
    photo, chosen = max(zip(photos, probabilities, strict=True), key=lambda pair: pair[1]["none"])
    assert max(chosen, key=chosen.get) == "none", f"the default side model calls no example `none`: {chosen}"
    return photo


def test_a_photo_that_is_not_a_phone_gets_no_grade_and_no_heatmap_in_the_browser(browser, default_app):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(default_app["url"])
    grade(page, PHOTO)  # a front first: its heatmap is on the page when the next photo comes
    expect(page.locator("#heatmap img")).to_be_visible(timeout=60_000)
    grade(page, not_a_phone_photo())
    expect(page.locator("#summary")).to_contain_text("This does not look like a phone", timeout=60_000)
    expect(page.locator("#summary")).to_contain_text("Report a wrong prediction")  # invited, in plain sight
    expect(page.locator("#heatmap img")).to_have_count(0, timeout=30_000)  # the front's heatmap is gone, none new
    page.locator("#details").get_by_text("Details", exact=True).click()
    # No scratch grade, not even in the details.
    expect(page.locator("#scratch")).not_to_contain_text(re.compile("major_scratch|minor_scratch|no_scratch"))
    page.close()


def test_the_page_fits_a_phone_screen(browser, default_app):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(default_app["url"])
    grade(page, PHOTO)
    expect(page.locator("#heatmap img")).to_be_visible(timeout=60_000)
    for section in ("Details", "Models"):  # the model table is the widest thing on the page
        page.locator(f"#{section.lower()}").get_by_text(section, exact=True).click()
    expect(page.get_by_text("trained on").first).to_be_visible()
    assert page.evaluate("window.innerWidth") == 390
    assert horizontal_overflow(page) == (0, [])
    page.close()
