"""The Gradio demo: grade a phone photo, and let users report wrong predictions into a corrections dataset.

`Grader` holds the logic (usable without Gradio): capture quality first, then the side model, then the scratch
model for front views; it asks the uploader to confirm when a model is unsure, and explains a grade with a heatmap.
`build_demo` wires it to a page and three named API endpoints, `/predict`, `/explain` and `/flag`; `add_options`
and `serve` are the command line that `phonegrade demo` and `app.py` share.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import html
import io
import logging
import os
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .classifier import PhoneGradeClassifier
from .confidence import DEFAULT_ASK_MARGIN, unsure
from .corrections import CorrectionStore, Prediction
from .errors import ConfigError, CorrectionError, ImageLoadError, ModelLoadError, PhoneGradeError
from .explain import explanation_png
from .hub import WEIGHTS_NAME
from .images import load_image
from .labels import SCRATCH_LABELS, SIDE_LABELS
from .quality import QualityReport, measure_quality

DEFAULT_MAX_UPLOAD_MB = 20
DEFAULT_CONCURRENCY = 4
# How the page names labels in its sentence.
SIDE_WORDS = {"front": "Front view", "back": "Back view", "none": "Not a phone"}
NOT_A_PHONE = "This does not look like a phone"
NOT_A_PHONE_INVITE = "If it shows a phone, please tell us under *Report a wrong prediction*."
NOT_A_PHONE_NOTE = f"Not graded: the photo does not look like a phone's front or back. {NOT_A_PHONE_INVITE}"
SCRATCH_WORDS = {"major_scratch": "major scratches", "minor_scratch": "minor scratches", "no_scratch": "no scratches"}
DAMAGE_LABELS = ("major_scratch", "minor_scratch")  # what a scratch heatmap shows, the likelier of the two
HEATMAP_MAX_SIDE = 768
# The development photos may not be redistributed, so the bundled examples are renders (`phonegrade synth`).
RENDERS_NOTE = "The examples are synthetic renders, as the photos the models learnt from may not be shared."
log = logging.getLogger("phonegrade.demo")


@dataclass
class LoadedModel:
    classifier: PhoneGradeClassifier
    model_id: str
    revision: str


def load_model(repo_or_dir: str, revision: str | None = None) -> LoadedModel:
    classifier = PhoneGradeClassifier.from_pretrained(repo_or_dir, revision=revision)
    if classifier.revision:
        rev = classifier.revision
    else:  # a local folder: identify the weights by their content
        rev = "sha256:" + hashlib.sha256((Path(repo_or_dir) / WEIGHTS_NAME).read_bytes()).hexdigest()[:12]
    return LoadedModel(classifier, display_id(repo_or_dir), rev)


def display_id(repo_or_dir: str) -> str:
    """A Hub id as it is; a local folder relative to the working directory when inside it (the page and the
    correction records need not show the server's file system)."""
    path = Path(repo_or_dir)
    if not path.is_dir():
        return str(repo_or_dir)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(repo_or_dir)


def describe_training_data(model: LoadedModel) -> str:
    config = model.classifier.config
    described = config.data.get("description") or f"`{config.data.get('name', 'unknown data')}`"
    crossval, accuracy = config.crossval, (config.metrics or {}).get("accuracy")
    grouped = config.crossval_grouped
    if crossval or grouped:  # a cross-validated number says more than one small validation split
        measured = "".join([
            f"; {crossval['folds']}-fold cross-validated accuracy {crossval['accuracy']['mean']:.3f} ± "
            f"{crossval['accuracy']['std']:.3f} on {crossval['n_images']} images" if crossval else "",
            f"; {grouped['pooled']['accuracy']:.3f} on photos of sources it never saw (each of {grouped['folds']} "
            f"sources left out in turn)" if grouped else ""])
    elif accuracy:
        measured = f", validation accuracy {accuracy:.3f} on {config.metrics['n_val']} images"
    else:
        measured = ""
    start = " from ImageNet weights" if config.training.get("weights") == "imagenet" else ""
    model_name = (f"{config.members} {config.arch} models averaged, each{start}" if config.members > 1
                  else f"{config.arch}{start},")
    return f"{model_name} trained on {described}{measured}"


def percent(p: float) -> str:
    return f"{round(p * 100)} %"


@dataclass(frozen=True)
class Assessment:
    """What the demo says about one photo: its capture quality, the models' probabilities (scratch empty when not
    graded), why scratches were not graded (`note`), and why the uploader is asked to confirm (`ask_reason`)."""

    quality: QualityReport
    prediction: Prediction
    note: str
    ask_reason: str

    @property
    def gradable(self) -> bool:
        return not self.quality.too_poor_to_grade

    @property
    def ask(self) -> bool:
        return bool(self.ask_reason)

    @property
    def not_a_phone(self) -> bool:
        return self.gradable and Prediction.top(self.prediction.side) == "none"

    def sentence(self) -> str:
        """The result in one line, e.g. "Front view — major scratches, 80 %"."""
        if not self.gradable:
            return "Cannot grade this photo"
        side = Prediction.top(self.prediction.side)
        if side == "none":
            return f"{NOT_A_PHONE} ({percent(self.prediction.side[side])})"
        if not self.prediction.scratch:
            return f"{SIDE_WORDS[side]}, {percent(self.prediction.side[side])}"
        scratch = Prediction.top(self.prediction.scratch)
        return f"{SIDE_WORDS[side]} — {SCRATCH_WORDS[scratch]}, {percent(self.prediction.scratch[scratch])}"


def _unsure(task: str, probabilities: dict[str, float]) -> str:
    words = SCRATCH_WORDS if task == "scratch" else {label: text.lower() for label, text in SIDE_WORDS.items()}
    first, second = sorted(probabilities, key=probabilities.get, reverse=True)[:2]
    return (f"the {task} model is unsure between {words[first]} ({percent(probabilities[first])}) and "
            f"{words[second]} ({percent(probabilities[second])}).")


class Grader:
    """Quality check → side model → scratch model (front views only) → optional correction stored in a
    CorrectionStore. `ask_margin`: ask the uploader to confirm when a model's top two probabilities are closer."""

    def __init__(self, side: LoadedModel, scratch: LoadedModel, store: CorrectionStore,
                 max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024,
                 ask_margin: float = DEFAULT_ASK_MARGIN, flag_limit: FlagLimit | None = None,
                 behind_proxy: bool = False):
        self.side, self.scratch, self.store = side, scratch, store
        self.max_upload_bytes = max_upload_bytes
        self.ask_margin = ask_margin
        self.flag_limit = flag_limit or FlagLimit()
        self.behind_proxy = behind_proxy
        # Folded once here, before any request: the first requests then only run the models.
        for model in (side, scratch):
            model.classifier.folded_net()

    @property
    def models(self) -> dict[str, str]:
        return {"side_model": self.side.model_id, "side_revision": self.side.revision,
                "scratch_model": self.scratch.model_id, "scratch_revision": self.scratch.revision}

    def read_upload(self, path: str | os.PathLike | None):
        if not path:
            raise ImageLoadError("no image: upload a photo first")
        size = os.path.getsize(path)
        if size > self.max_upload_bytes:
            raise ImageLoadError(f"the file is {size / 2**20:.1f} MB; the limit is "
                                 f"{self.max_upload_bytes / 2**20:g} MB")
        return load_image(path, name="upload")  # not the path: that is Gradio's cache, nothing the user knows

    def predict(self, image) -> tuple[Prediction, str]:
        """Probabilities for both tasks, and a sentence saying why scratches were not graded (if so)."""
        side = self.side.classifier.predict([image], fold_batchnorm=True)[0]
        top = max(side, key=side.get)
        if top == "none":
            return Prediction(side, {}), NOT_A_PHONE_NOTE
        if top != "front":
            return Prediction(side, {}), f"Scratches not graded: this looks like a phone's **{top}**, not its front."
        return Prediction(side, self.scratch.classifier.predict([image], fold_batchnorm=True)[0]), ""

    def assess(self, image) -> Assessment:
        """Capture quality, the prediction, and whether to ask. A photo too poor to grade gets the side model's
        probabilities (the API has always given them), no scratch grade, and no question."""
        quality = measure_quality(image)
        if quality.too_poor_to_grade:
            side = self.side.classifier.predict([image], fold_batchnorm=True)[0]
            return Assessment(quality, Prediction(side, {}), "Not graded: the photo is too poor to grade.", "")
        prediction, note = self.predict(image)
        reasons = [_unsure(task, probabilities) for task, probabilities in
                   (("side", prediction.side), ("scratch", prediction.scratch))
                   if probabilities and unsure(probabilities, self.ask_margin)]
        return Assessment(quality, prediction, note, " ".join(reason[0].upper() + reason[1:] for reason in reasons))

    def explain(self, image, task: str | None = None, label: str | None = None,
                max_side: int = HEATMAP_MAX_SIDE) -> tuple[Image.Image, str, str] | None:
        """Grad-CAM heatmap over the photo; returns (image, task, label explained). `task` None: the scratch model
        for a front view, the side model for a back view, and nothing (None) for a photo that does not look like a
        phone: there is nothing on it to explain. `label` None: for the scratch model the likelier damage (major or
        minor scratches: where the damage is), for the side model its prediction."""
        if task not in (None, "side", "scratch"):
            raise ConfigError(f"task must be side or scratch, got {task!r}")
        if task is None:
            prediction = self.predict(image)[0]
            if Prediction.top(prediction.side) == "none":
                return None
            task = "scratch" if prediction.scratch else "side"
        model = self.scratch if task == "scratch" else self.side
        if label is None and task == "scratch":
            probabilities = model.classifier.predict([image], fold_batchnorm=True)[0]
            label = max(DAMAGE_LABELS, key=probabilities.get)
        png, explained = explanation_png(model.classifier, image, label, max_side=max_side)
        return Image.open(io.BytesIO(png)), task, explained

    def flag(self, image, corrected_side: str | None, corrected_scratch: str | None,
             comment: str | None = None, consent: bool = False, asked: bool = False, client: str | None = None) -> str:
        """Store a correction (`asked`: an answer to the page asking, rather than a report of the user's own).
        The prediction stored is recomputed here: nothing the client claims about it is trusted. The photo is
        kept only with the sender's consent to contribute it under CC BY 4.0. `client` (an address) is held to
        `flag_limit`."""
        if client is not None:
            self.flag_limit.check(client)
        prediction, _ = self.predict(image)
        return self.store.add(image, prediction, corrected_side or None, corrected_scratch or None,
                              self.models, comment, consent=consent, source="asked" if asked else "flagged")


DEFAULT_FLAG_LIMIT = 10  # corrections a client may send per minute


class FlagLimit:
    """At most `count` corrections per client in any `seconds` (a sliding window), so that one client cannot
    flood the corrections store or crowd out everyone else; `check` raises CorrectionError past it."""

    def __init__(self, count: int = DEFAULT_FLAG_LIMIT, seconds: float = 60.0, clock=None):
        import time

        self.count, self.seconds, self.clock = count, seconds, clock or time.monotonic
        self._sent: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        if self.count <= 0:
            return
        now = self.clock()
        with self._lock:
            # Forget clients quiet for a whole window: the table holds only recent senders.
            self._sent = {key: kept for key, times in self._sent.items()
                          if (kept := [t for t in times if now - t < self.seconds])}
            times = self._sent.setdefault(client, [])
            if len(times) >= self.count:
                wait = self.seconds - (now - times[0])
                raise CorrectionError(f"too many corrections from this address: at most {self.count} every "
                                      f"{self.seconds:g} s; try again in {max(1, round(wait))} s")
            times.append(now)


def client_address(request, behind_proxy: bool = False) -> str:
    """Who sent a request: the connecting address, or behind a reverse proxy (a Hugging Face Space) the first
    address of X-Forwarded-For, which the proxy sets (taken only when told so: a client can write that header)."""
    if behind_proxy:
        forwarded = (request.headers.get("x-forwarded-for") or "").split(",")[0].strip()
        if forwarded:
            return forwarded
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


@dataclass(frozen=True)
class Example:
    """A photo shown under the upload box, with what it shows where known (its folder's labels.csv)."""

    path: str
    side: str | None = None
    scratch: str | None = None


def read_examples(folder: str | os.PathLike) -> list[Example]:
    """The images of `folder`, with their `side` and `scratch` labels from its labels.csv (columns file, side,
    scratch; either may be empty) where it has one."""
    import csv

    from .images import IMAGE_EXTENSIONS

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--examples {folder}: not a folder")
    labels = {}
    if (folder / "labels.csv").is_file():
        with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
            labels = {row["file"]: row for row in csv.DictReader(f) if row.get("file")}
    examples = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
        row = labels.get(path.name, {})
        side, scratch = row.get("side") or None, row.get("scratch") or None
        if side not in (None, *SIDE_LABELS) or scratch not in (None, *SCRATCH_LABELS):
            raise ConfigError(f"{folder / 'labels.csv'}: {path.name} has labels {side!r} / {scratch!r}; expected "
                              f"{', '.join(SIDE_LABELS)} and {', '.join(SCRATCH_LABELS)}")
        examples.append(Example(str(path), side, scratch))
    return examples


def examples_note(grader: Grader, examples: list[Example], renders: bool) -> str:
    """What the page says under the examples: that they are renders (the bundled ones), and which of them the
    models grade differently from what they show, so that the page never shows a wrong grade as if it were right."""
    wrong = []
    for example in examples:
        if example.side is None:
            continue
        prediction, _ = grader.predict(load_image(example.path))
        side = Prediction.top(prediction.side)
        scratch = Prediction.top(prediction.scratch) if prediction.scratch else None
        shows = [SIDE_WORDS[example.side].lower()] + ([SCRATCH_WORDS[example.scratch]] if example.scratch else [])
        graded = [SIDE_WORDS[side].lower()] + ([SCRATCH_WORDS[scratch]] if scratch and example.scratch else [])
        if side != example.side or (example.scratch and scratch != example.scratch):
            wrong.append(f"{Path(example.path).stem} shows {', '.join(shows)}; graded {', '.join(graded)}")
    parts = [RENDERS_NOTE] if renders else []
    if wrong:
        advice = " Renders are not photos: try a photo of your own." if renders else ""
        parts.append(f"These models grade {len(wrong)} of the {len(examples)} examples wrong: {'; '.join(wrong)}."
                     + advice)
    return "<small>" + html.escape(" ".join(parts)) + "</small>" if parts else ""


def _models_table(grader: Grader) -> str:
    rows = []
    for task, model in (("side", grader.side), ("scratch", grader.scratch)):
        rows.append(f"| {task} | `{html.escape(model.model_id)}` | `{model.revision}` | "
                    f"{describe_training_data(model)} |")
    return "| task | model | revision | |\n|---|---|---|---|\n" + "\n".join(rows)


INTRO = ("# phonegrade\n"
         "Upload a photo of a phone: which side it shows, and — for a front view — how scratched the screen is. "
         "If a prediction is wrong, report it below: corrections train the next model.")
CONSENT_LABEL = ("Contribute this photo under CC BY 4.0 (it may be published in the corrections dataset and used to "
                 "train models). Unticked, only the labels, the probabilities, your comment and a hash of the pixels "
                 "are kept.")
# Phone-sized screens: nothing wider than the screen (long model names and tables scroll inside their box).
PAGE_CSS = """
#summary h2 { margin: 0.2em 0; }
#models table { display: block; overflow-x: auto; }
#models code, #summary, #ask, #quality { overflow-wrap: anywhere; }
"""


def _clear_errors(fn):
    """An event handler whose failures reach the client as a clear message and nothing more: our own errors
    as they are (HTML-escaped: Gradio renders error messages as HTML), anything else as a generic message,
    with the traceback only in the server log."""
    import gradio as gr

    @functools.wraps(fn)
    def handler(*args):
        try:
            return fn(*args)
        except PhoneGradeError as err:
            raise gr.Error(html.escape(str(err), quote=False), print_exception=False) from None
        except Exception:  # noqa: BLE001 - anything unexpected: the details stay in the server log
            log.exception("%s failed", fn.__name__)
            raise gr.Error("Something went wrong on the server (it has been logged); please try again.",
                           print_exception=False) from None
    return handler


def _with_request(fn):
    """Mark a handler's `request` parameter as gr.Request, so that Gradio passes the request in: Gradio finds it by
    type hint, which this module's postponed (string) annotations would hide from it."""
    import gradio as gr

    fn.__annotations__["request"] = gr.Request
    return fn


def _upload_path(payload: dict | None) -> str | None:
    """The cached upload's path from an unprocessed image/file payload (events run with preprocess=False).

    Gradio's own preprocessing would open the file with PIL first (gr.Image: a corrupt upload then fails
    with a generic message naming its cache path) or leave an empty temporary file behind (gr.File); this
    way the file reaches `load_image`, with its limits and clear errors, untouched. Gradio has already
    checked that the path is an upload in its cache.
    """
    if not payload:
        return None
    if payload.get("path"):
        return payload["path"]
    raise ImageLoadError("upload: send the image as a file")  # e.g. an inline data: URL


def _quality_hint(assessment: Assessment) -> str:
    if not assessment.quality.warnings:
        return ""
    lead = "**Retake hint:**" if assessment.gradable else "**Too poor to grade.**"
    return lead + "\n" + "\n".join(f"- {html.escape(warning)}" for warning in assessment.quality.warnings)


def _ask_prompt(assessment: Assessment) -> str:
    if not assessment.ask:
        return ""
    return (f"**Not sure about this one.** {html.escape(assessment.ask_reason)} Is the grade right? Confirm or "
            "correct it in the form below and press *Send answer*.")


def _page_handlers(grader: Grader):
    """The page's events: grade (a sentence, hints, the question and the form filled in when asked), heatmap,
    correction."""
    import gradio as gr

    @_clear_errors
    def ui_predict(payload):
        path = _upload_path(payload)
        if not path:
            return ("", "", "", None, None, "", gr.update(), gr.update(), "flagged", gr.update(),
                    gr.update(value="Submit correction"))
        assessment = grader.assess(grader.read_upload(path))
        prediction = assessment.prediction
        if assessment.ask:  # the form, opened and filled in with the grade: confirming is one click
            form = (gr.update(value=Prediction.top(prediction.side)),
                    gr.update(value=Prediction.top(prediction.scratch)), "asked", gr.update(open=True),
                    gr.update(value="Send answer"))
        else:
            form = (gr.update(value=""), gr.update(value=""), "flagged", gr.update(),
                    gr.update(value="Submit correction"))
        shown = prediction if assessment.gradable else Prediction({}, {})  # no grade shown, not even in details
        invite = f"\n{NOT_A_PHONE_INVITE}" if assessment.not_a_phone else ""
        return (f"## {assessment.sentence()}{invite}", _quality_hint(assessment), _ask_prompt(assessment),
                shown.side or None, shown.scratch or None, assessment.note, *form)

    @_clear_errors
    def ui_heatmap(payload):
        path = _upload_path(payload)
        if not path:
            return gr.update(value=None, label="Heatmap")
        image = grader.read_upload(path)
        if measure_quality(image).too_poor_to_grade:
            return gr.update(value=None, label="Heatmap")
        explanation = grader.explain(image)
        if explanation is None:  # not a phone: nothing to show where
            return gr.update(value=None, label="Heatmap")
        explained, task, label = explanation
        words = SCRATCH_WORDS[label] if task == "scratch" else SIDE_WORDS[label].lower()
        return gr.update(value=explained, label=f"Heatmap: where the {task} model sees {words}")

    @_clear_errors
    @_with_request
    def ui_flag(payload, corrected_side, corrected_scratch, comment, consent, source, request):
        image = grader.read_upload(_upload_path(payload))
        record_id = grader.flag(image, corrected_side, corrected_scratch, comment, consent=bool(consent),
                                asked=source == "asked", client=client_address(request, grader.behind_proxy))
        kept = "with the photo" if consent else "without the photo"
        return f"Saved {kept}, thank you. Record `{record_id}`."

    return ui_predict, ui_heatmap, ui_flag


def _add_api_endpoints(grader: Grader, limit: dict) -> None:
    """Script-friendly endpoints on hidden components (inside the Blocks): /predict and /flag answer plain
    JSON, /explain an image file."""
    import gradio as gr

    @_clear_errors
    def api_predict(payload) -> dict:
        assessment = grader.assess(grader.read_upload(_upload_path(payload)))
        prediction = assessment.prediction
        return {"summary": assessment.sentence(), "side": prediction.side, "scratch": prediction.scratch or None,
                "graded": bool(prediction.scratch), "note": assessment.note.replace("**", ""),
                "ask": assessment.ask, "ask_reason": assessment.ask_reason, "quality": assessment.quality.to_dict(),
                **grader.models}

    @_clear_errors
    def api_explain(payload, task, label):
        explanation = grader.explain(grader.read_upload(_upload_path(payload)), task or None, label or None)
        return explanation[0] if explanation else None  # None: not a phone, and no task named

    @_clear_errors
    @_with_request
    def api_flag(payload, corrected_side, corrected_scratch, comment, consent, asked, request) -> dict:
        image = grader.read_upload(_upload_path(payload))
        return {"record_id": grader.flag(image, corrected_side, corrected_scratch, comment, consent=bool(consent),
                                         asked=bool(asked), client=client_address(request, grader.behind_proxy))}

    with gr.Column(visible=False):
        # A file, not an image: scripts send any file and get load_image's clear errors.
        api_image = gr.File()
        api_side, api_scratch, api_comment = gr.Textbox(), gr.Textbox(), gr.Textbox()
        api_consent, api_asked = gr.Checkbox(False), gr.Checkbox(False)
        api_task = gr.Textbox("", label="task: side, scratch, or empty for the page's choice")
        api_label = gr.Textbox("", label="label to explain, or empty")
        api_result = gr.JSON()
        api_heatmap = gr.Image(format="png")
        gr.Button().click(api_predict, api_image, api_result, api_name="predict", **limit)
        gr.Button().click(api_explain, [api_image, api_task, api_label], api_heatmap, api_name="explain",
                          **limit)
        gr.Button().click(api_flag, [api_image, api_side, api_scratch, api_comment, api_consent, api_asked],
                          api_result, api_name="flag", **limit)


def build_demo(grader: Grader, examples: list[Example] | None = None, concurrency: int = DEFAULT_CONCURRENCY,
               queue_size: int = 256, upload_ttl_s: int | None = None, analytics: bool = False,
               examples_text: str = ""):
    """The page and its /predict, /explain and /flag endpoints (launch it with css=PAGE_CSS).

    The page shows the grade as a sentence first, with capture-quality hints and, when a model is unsure, a
    question; the heatmap follows as a second step, so that it never delays the grade (it costs about one more
    prediction). concurrency: requests processed at once over all events (they share the models); up to
    `queue_size` more wait in Gradio's queue. upload_ttl_s: Gradio deletes uploaded files from its cache
    (GRADIO_TEMP_DIR) once they are this old, checking every quarter of it (None: never). analytics: let Gradio
    send its usage telemetry to gradio.app (off: the page makes no outside connection of its own).
    """
    import gradio as gr

    ui_predict, ui_heatmap, ui_flag = _page_handlers(grader)
    delete_cache = (max(1, upload_ttl_s // 4), upload_ttl_s) if upload_ttl_s else None
    # One concurrency group for every event: `concurrency` bounds the requests running at once, not per event.
    # preprocess=False: handlers get the raw payloads (see _upload_path).
    limit = {"concurrency_id": "grader", "preprocess": False}
    with gr.Blocks(title="phonegrade", delete_cache=delete_cache, analytics_enabled=analytics) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(min_width=280):
                image = gr.Image(type="filepath", sources=["upload", "webcam", "clipboard"], label="Phone photo",
                                 height=360, elem_id="photo")
                grade = gr.Button("Grade", variant="primary", elem_id="grade")
                if examples:
                    gr.Examples([example.path for example in examples], inputs=image, label="Examples")
                    gr.Markdown(examples_text, elem_id="examples-note")
            with gr.Column(min_width=280):
                summary = gr.Markdown(elem_id="summary")
                quality = gr.Markdown(elem_id="quality")
                ask = gr.Markdown(elem_id="ask")
                heatmap_out = gr.Image(label="Heatmap", interactive=False, format="png", height=360,
                                       elem_id="heatmap")
                with gr.Accordion("Details", open=False, elem_id="details"):
                    side_out = gr.Label(num_top_classes=len(SIDE_LABELS), label="Side", elem_id="side")
                    scratch_out = gr.Label(num_top_classes=len(SCRATCH_LABELS), label="Scratch grade",
                                           elem_id="scratch")
                    note = gr.Markdown(elem_id="note")
        with gr.Accordion("Report a wrong prediction", open=False, elem_id="report") as report:
            with gr.Row():
                side_fix = gr.Dropdown(["", *SIDE_LABELS], value="", label="Correct side", elem_id="side-fix",
                                       min_width=160)
                scratch_fix = gr.Dropdown(["", *SCRATCH_LABELS], value="", label="Correct scratch grade",
                                          elem_id="scratch-fix", min_width=160)
            comment = gr.Textbox(label="Comment (optional)", max_lines=3, elem_id="comment")
            consent = gr.Checkbox(False, label=CONSENT_LABEL, elem_id="consent")
            source = gr.State("flagged")  # "asked" while the form answers the page's question
            submit = gr.Button("Submit correction", elem_id="submit-correction")
            status = gr.Markdown(elem_id="flag-status")
        with gr.Accordion("Models", open=False, elem_id="models"):
            gr.Markdown(_models_table(grader))

        outputs = [summary, quality, ask, side_out, scratch_out, note, side_fix, scratch_fix, source, report, submit]
        for trigger in (image.change, grade.click):
            trigger(ui_predict, image, outputs, api_visibility="private", **limit).success(
                ui_heatmap, image, heatmap_out, api_visibility="private", **limit)
        submit.click(ui_flag, [image, side_fix, scratch_fix, comment, consent, source], status,
                     api_visibility="private", **limit)

        _add_api_endpoints(grader, limit)
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return demo


# ---------------------------------------------------------------- the command line (`phonegrade demo`, app.py)

def _ask_margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 (never ask) and 1, got {text}")
    return value


def add_options(parser: argparse.ArgumentParser, corrections_dir: str) -> None:
    """The demo's options; each can also be set with the environment variable in its help."""
    from . import DEFAULT_MODELS

    env = os.environ.get
    parser.add_argument("--side-model", default=env("PHONEGRADE_SIDE_MODEL", DEFAULT_MODELS["side"]),
                        help="side model: local folder or Hub model id [PHONEGRADE_SIDE_MODEL]")
    parser.add_argument("--side-revision", default=env("PHONEGRADE_SIDE_REVISION"), help="Hub revision")
    parser.add_argument("--scratch-model", default=env("PHONEGRADE_SCRATCH_MODEL", DEFAULT_MODELS["scratch"]),
                        help="scratch model: local folder or Hub model id [PHONEGRADE_SCRATCH_MODEL]")
    parser.add_argument("--scratch-revision", default=env("PHONEGRADE_SCRATCH_REVISION"), help="Hub revision")
    parser.add_argument("--ask-margin", type=_ask_margin,
                        default=env("PHONEGRADE_ASK_MARGIN", str(DEFAULT_ASK_MARGIN)),  # argparse checks it
                        help="ask the uploader to confirm when a model's top two probabilities are closer than this "
                             "(0: never ask; docs/demo.md) [PHONEGRADE_ASK_MARGIN]")
    parser.add_argument("--corrections-dir", default=env("PHONEGRADE_CORRECTIONS_DIR", corrections_dir),
                        help="where flagged corrections are stored [PHONEGRADE_CORRECTIONS_DIR]")
    parser.add_argument("--corrections-repo", default=env("PHONEGRADE_CORRECTIONS_REPO"),
                        help="Hub dataset repo the corrections are pushed to in the background "
                             "[PHONEGRADE_CORRECTIONS_REPO]")
    parser.add_argument("--public-corrections", action="store_true",
                        default=env("PHONEGRADE_PUBLIC_CORRECTIONS") == "1",
                        help="create --corrections-repo as a public dataset (default: private; an existing repo keeps "
                             "its visibility) [PHONEGRADE_PUBLIC_CORRECTIONS=1]")
    parser.add_argument("--push-every", type=float, default=float(env("PHONEGRADE_PUSH_EVERY", "300")),
                        help="seconds between background pushes of new corrections")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--max-upload-mb", type=float, default=float(env("PHONEGRADE_MAX_UPLOAD_MB", "20")),
                        help="largest accepted upload")
    parser.add_argument("--concurrency", type=int, default=int(env("PHONEGRADE_CONCURRENCY", "4")),
                        help="requests processed at once (the rest wait in Gradio's queue)")
    parser.add_argument("--upload-dir",
                        default=env("GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / "phonegrade-uploads")),
                        help="Gradio's cache of uploaded files [GRADIO_TEMP_DIR]")
    parser.add_argument("--flag-limit", type=int, default=int(env("PHONEGRADE_FLAG_LIMIT", str(DEFAULT_FLAG_LIMIT))),
                        help="corrections one client may send per minute (0: no limit) [PHONEGRADE_FLAG_LIMIT]")
    parser.add_argument("--behind-proxy", action="store_true", default=env("PHONEGRADE_BEHIND_PROXY") == "1",
                        help="tell clients apart by the X-Forwarded-For address a reverse proxy sets (Hugging Face "
                             "Spaces, nginx); only behind such a proxy, as clients can forge it "
                             "[PHONEGRADE_BEHIND_PROXY=1]")
    parser.add_argument("--analytics", action="store_true", default=env("PHONEGRADE_ANALYTICS") == "1",
                        help="send Gradio's usage analytics to gradio.app (off by default: the demo makes no "
                             "outside connection unless a Hub repo is given) [PHONEGRADE_ANALYTICS=1]")
    parser.add_argument("--examples", metavar="DIR", default=env("PHONEGRADE_EXAMPLES"),
                        help="a folder of photos to offer as examples instead of the bundled renders; a labels.csv "
                             "in it (columns file, side, scratch) lets the page say which ones the models grade "
                             "wrong [PHONEGRADE_EXAMPLES]")
    parser.add_argument("--upload-ttl", type=int, default=int(env("PHONEGRADE_UPLOAD_TTL", "3600")),
                        help="seconds an uploaded file is kept in --upload-dir (0: never deleted)")


def _delete_uploads(demo) -> None:
    """Delete the uploads Gradio holds for `demo`, as Gradio does when its server stops (a private function of
    Gradio's: should a release move it, Gradio's own deletion still runs, if later)."""
    try:
        from gradio.route_utils import delete_files_created_by_app
    except ImportError:
        log.warning("this Gradio has no route_utils.delete_files_created_by_app: uploads are left to Gradio")
        return
    delete_files_created_by_app(demo, age=None)


def serve(args: argparse.Namespace, prog: str) -> int:
    """Load the models and serve the page until interrupted; `prog` names the command in error messages."""
    from . import EXAMPLES_DIR
    from .corrections import FINAL_PUSH_BUDGET_S, HubPusher, bound_hub_requests

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ["GRADIO_TEMP_DIR"] = args.upload_dir  # read by Gradio when the page is built and served
    os.environ["GRADIO_ANALYTICS_ENABLED"] = str(args.analytics)  # read by Gradio's version check and telemetry
    try:
        side = load_model(args.side_model, args.side_revision)
        scratch = load_model(args.scratch_model, args.scratch_revision)
    except ModelLoadError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    for task, model in (("side", side), ("scratch", scratch)):
        if model.classifier.task != task:
            print(f"{prog}: error: --{task}-model {model.model_id} is a {model.classifier.task} model",
                  file=sys.stderr)
            return 2
    store = CorrectionStore(args.corrections_dir)
    try:
        store.ensure()
        store.clean_staging()
    except OSError as err:  # predictions do not need the folder; each correction will say why it fails
        log.warning("corrections folder %s is not usable (%s): corrections cannot be saved until it is",
                    args.corrections_dir, err)
    pusher = None
    if args.corrections_repo:
        bound_hub_requests()  # a Hub that stops answering fails a push (its records stay queued), never hangs it
        pusher = HubPusher(store, args.corrections_repo, every_s=args.push_every,
                           private=not args.public_corrections).start()
    max_bytes = int(args.max_upload_mb * 1024 * 1024)
    grader = Grader(side, scratch, store, max_upload_bytes=max_bytes, ask_margin=args.ask_margin,
                    flag_limit=FlagLimit(args.flag_limit), behind_proxy=args.behind_proxy)
    try:
        examples = read_examples(args.examples or EXAMPLES_DIR)
    except (OSError, ConfigError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    demo = build_demo(grader, examples, concurrency=args.concurrency, upload_ttl_s=args.upload_ttl or None,
                      analytics=args.analytics,
                      examples_text=examples_note(grader, examples, renders=not args.examples))
    # SIGTERM (docker stop, systemd) closes the app like Ctrl-C does: Gradio deletes the uploads it holds, and the
    # corrections pusher makes its last push (for at most corrections.FINAL_PUSH_BUDGET_S). The push starts at the
    # signal, so that it and Gradio's wait for its server to stop overlap instead of adding up.
    last_push = threading.Thread(target=pusher.stop, name="corrections-stop", daemon=True) if pusher else None

    def interrupt(signum, frame):
        if last_push and last_push.ident is None:  # not started yet (a second signal must not restart it)
            last_push.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    try:
        # show_error=False: only gr.Error messages (clear, ours) reach the client, never other exceptions' text.
        demo.launch(server_name=args.host, server_port=args.port, max_file_size=max_bytes, show_error=False,
                    css=PAGE_CSS)
    finally:
        # Gradio deletes the uploads it holds as its server's last act, which open client connections can delay
        # past this process's exit (launch returns after waiting 5 s): delete them here, as Gradio would.
        if args.upload_ttl:  # 0: uploads are kept
            _delete_uploads(demo)
        if last_push and last_push.ident is not None:
            last_push.join(FINAL_PUSH_BUDGET_S + 1)
        elif pusher:
            pusher.stop()
    return 0
