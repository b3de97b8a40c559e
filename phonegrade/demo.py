"""The Gradio demo: grade a phone photo, and let users report wrong predictions into a corrections dataset.

`Grader` holds the logic (usable without Gradio); `build_demo` wires it to a page and two named API
endpoints, `/predict` and `/flag`.
"""

from __future__ import annotations

import functools
import hashlib
import html
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .classifier import PhoneGradeClassifier
from .corrections import CorrectionStore, Prediction
from .errors import CorrectionError, ImageLoadError
from .hub import WEIGHTS_NAME
from .images import load_image
from .labels import SCRATCH_LABELS, SIDE_LABELS

DEFAULT_MAX_UPLOAD_MB = 20
DEFAULT_CONCURRENCY = 4
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
    if crossval:  # a cross-validated number says more than one small validation split
        measured = (f"; {crossval['folds']}-fold cross-validated accuracy {crossval['accuracy']['mean']:.3f} ± "
                    f"{crossval['accuracy']['std']:.3f} on {crossval['n_images']} images")
    elif accuracy:
        measured = f", validation accuracy {accuracy:.3f} on {config.metrics['n_val']} images"
    else:
        measured = ""
    start = " from ImageNet weights" if config.training.get("weights") == "imagenet" else ""
    model_name = (f"{config.members} {config.arch} models averaged, each{start}" if config.members > 1
                  else f"{config.arch}{start},")
    return f"{model_name} trained on {described}{measured}"


class Grader:
    """Side model → scratch model (front views only) → optional correction stored in a CorrectionStore."""

    def __init__(self, side: LoadedModel, scratch: LoadedModel, store: CorrectionStore,
                 max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024):
        self.side, self.scratch, self.store = side, scratch, store
        self.max_upload_bytes = max_upload_bytes
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
        if top != "front":
            return Prediction(side, {}), f"Scratches not graded: this looks like **{top}**, not a phone's front."
        return Prediction(side, self.scratch.classifier.predict([image], fold_batchnorm=True)[0]), ""

    def flag(self, image, corrected_side: str | None, corrected_scratch: str | None,
             comment: str | None = None, consent: bool = False) -> str:
        # The prediction stored is recomputed here: nothing the client claims about it is trusted. The photo is
        # kept only with the sender's consent to contribute it under CC BY 4.0.
        prediction, _ = self.predict(image)
        return self.store.add(image, prediction, corrected_side or None, corrected_scratch or None,
                              self.models, comment, consent=consent)


def _header(grader: Grader) -> str:
    rows = []
    for task, model in (("side", grader.side), ("scratch", grader.scratch)):
        rows.append(f"| {task} | `{html.escape(model.model_id)}` | `{model.revision}` | "
                    f"{describe_training_data(model)} |")
    return ("# phonegrade\n"
            "Upload a photo of a phone: which side it shows, and — for a front view — how scratched the screen is. "
            "If a prediction is wrong, report it below: corrections train the next model.\n\n"
            "| task | model | revision | |\n|---|---|---|---|\n" + "\n".join(rows))


def _clear_errors(fn):
    """An event handler whose failures reach the client as a clear message and nothing more: our own errors
    as they are (HTML-escaped: Gradio renders error messages as HTML), anything else as a generic message,
    with the traceback only in the server log."""
    import gradio as gr

    @functools.wraps(fn)
    def handler(*args):
        try:
            return fn(*args)
        except (ImageLoadError, CorrectionError) as err:
            raise gr.Error(html.escape(str(err), quote=False), print_exception=False) from None
        except Exception:  # noqa: BLE001 - anything unexpected: the details stay in the server log
            log.exception("%s failed", fn.__name__)
            raise gr.Error("Something went wrong on the server (it has been logged); please try again.",
                           print_exception=False) from None
    return handler


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


def build_demo(grader: Grader, examples: list[str] | None = None, concurrency: int = DEFAULT_CONCURRENCY,
               queue_size: int = 256, upload_ttl_s: int | None = None, analytics: bool = False):
    """The page and its /predict and /flag endpoints.

    concurrency: requests processed at once over all events (they share the models); up to `queue_size` more
    wait in Gradio's queue. upload_ttl_s: Gradio deletes uploaded files from its cache (GRADIO_TEMP_DIR) once
    they are this old, checking every quarter of it (None: never). analytics: let Gradio send its usage
    telemetry to gradio.app (off: the page makes no outside connection of its own).
    """
    import gradio as gr

    @_clear_errors
    def ui_predict(payload):
        path = _upload_path(payload)
        if not path:
            return None, None, ""
        prediction, note = grader.predict(grader.read_upload(path))
        return prediction.side, prediction.scratch or None, note

    @_clear_errors
    def ui_flag(payload, corrected_side, corrected_scratch, comment):
        image = grader.read_upload(_upload_path(payload))
        record_id = grader.flag(image, corrected_side, corrected_scratch, comment)
        return f"Saved, thank you. Record `{record_id}`."

    @_clear_errors
    def api_predict(payload) -> dict:
        prediction, note = grader.predict(grader.read_upload(_upload_path(payload)))
        return {"side": prediction.side, "scratch": prediction.scratch or None, "graded": bool(prediction.scratch),
                "note": note.replace("**", ""), **grader.models}

    @_clear_errors
    def api_flag(payload, corrected_side, corrected_scratch, comment) -> dict:
        image = grader.read_upload(_upload_path(payload))
        return {"record_id": grader.flag(image, corrected_side, corrected_scratch, comment)}

    delete_cache = (max(1, upload_ttl_s // 4), upload_ttl_s) if upload_ttl_s else None
    # One concurrency group for every event: `concurrency` bounds the requests running at once, not per event.
    # preprocess=False: handlers get the raw payloads (see _upload_path).
    limit = {"concurrency_id": "grader", "preprocess": False}
    with gr.Blocks(title="phonegrade", delete_cache=delete_cache, analytics_enabled=analytics) as demo:
        gr.Markdown(_header(grader))
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="filepath", sources=["upload", "webcam", "clipboard"], label="Phone photo",
                                 height=360, elem_id="photo")
                grade = gr.Button("Grade", variant="primary", elem_id="grade")
                if examples:
                    gr.Examples(examples, inputs=image, label="Examples")
            with gr.Column():
                side_out = gr.Label(num_top_classes=len(SIDE_LABELS), label="Side", elem_id="side")
                scratch_out = gr.Label(num_top_classes=len(SCRATCH_LABELS), label="Scratch grade",
                                       elem_id="scratch")
                note = gr.Markdown(elem_id="note")
        with gr.Accordion("Report a wrong prediction", open=True):
            with gr.Row():
                side_fix = gr.Dropdown(["", *SIDE_LABELS], value="", label="Correct side", elem_id="side-fix")
                scratch_fix = gr.Dropdown(["", *SCRATCH_LABELS], value="", label="Correct scratch grade",
                                          elem_id="scratch-fix")
            comment = gr.Textbox(label="Comment (optional)", max_lines=3, elem_id="comment")
            submit = gr.Button("Submit correction", elem_id="submit-correction")
            status = gr.Markdown(elem_id="flag-status")

        outputs = [side_out, scratch_out, note]
        image.change(ui_predict, image, outputs, api_visibility="private", **limit)
        grade.click(ui_predict, image, outputs, api_visibility="private", **limit)
        submit.click(ui_flag, [image, side_fix, scratch_fix, comment], status, api_visibility="private", **limit)

        # Script-friendly endpoints with plain JSON results: /predict and /flag.
        with gr.Column(visible=False):
            # A file, not an image: scripts send any file and get load_image's clear errors.
            api_image = gr.File()
            api_side, api_scratch, api_comment = gr.Textbox(), gr.Textbox(), gr.Textbox()
            api_result = gr.JSON()
            gr.Button().click(api_predict, api_image, api_result, api_name="predict", **limit)
            gr.Button().click(api_flag, [api_image, api_side, api_scratch, api_comment], api_result,
                              api_name="flag", **limit)
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return demo
