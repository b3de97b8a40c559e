"""The Gradio demo: grade a phone photo, and let users report wrong predictions into a corrections dataset.

`Grader` holds the logic (usable without Gradio); `build_demo` wires it to a page and two named API
endpoints, `/predict` and `/flag`.
"""

from __future__ import annotations

import hashlib
import html
import os
from dataclasses import dataclass
from pathlib import Path

from .corrections import CorrectionError, CorrectionStore, Prediction
from .data import ImageLoadError, load_image
from .hub import WEIGHTS_NAME, PhoneGradeClassifier
from .labels import SCRATCH_LABELS, SIDE_LABELS

DEFAULT_MAX_UPLOAD_MB = 20


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
    return LoadedModel(classifier, str(repo_or_dir), rev)


def describe_training_data(model: LoadedModel) -> str:
    config = model.classifier.config
    described = config.get("data_description") or f"`{config.get('dataset', 'unknown data')}`"
    accuracy = config.get("metrics", {}).get("accuracy")
    measured = f", validation accuracy {accuracy:.3f} on {config['metrics']['n_val']} images" if accuracy else ""
    return f"trained on {described}{measured}"


class Grader:
    """Side model → scratch model (front views only) → optional correction stored in a CorrectionStore."""

    def __init__(self, side: LoadedModel, scratch: LoadedModel, store: CorrectionStore,
                 max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024):
        self.side, self.scratch, self.store = side, scratch, store
        self.max_upload_bytes = max_upload_bytes

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
                                 f"{self.max_upload_bytes / 2**20:.0f} MB")
        return load_image(path)

    def predict(self, image) -> tuple[Prediction, str]:
        """Probabilities for both tasks, and a sentence saying why scratches were not graded (if so)."""
        side = self.side.classifier.predict([image])[0]
        top = max(side, key=side.get)
        if top != "front":
            return Prediction(side, {}), f"Scratches not graded: this looks like **{top}**, not a phone's front."
        return Prediction(side, self.scratch.classifier.predict([image])[0]), ""

    def flag(self, image, corrected_side: str | None, corrected_scratch: str | None,
             comment: str | None = None) -> str:
        # The prediction stored is recomputed here: nothing the client claims about it is trusted.
        prediction, _ = self.predict(image)
        return self.store.add(image, prediction, corrected_side or None, corrected_scratch or None,
                              self.models, comment)


def _header(grader: Grader) -> str:
    rows = []
    for task, model in (("side", grader.side), ("scratch", grader.scratch)):
        rows.append(f"| {task} | `{html.escape(model.model_id)}` | `{model.revision}` | "
                    f"{describe_training_data(model)} |")
    return ("# phonegrade\n"
            "Upload a photo of a phone: which side it shows, and — for a front view — how scratched the screen is. "
            "If a prediction is wrong, report it below: corrections train the next model.\n\n"
            "| task | model | revision | |\n|---|---|---|---|\n" + "\n".join(rows))


def build_demo(grader: Grader, examples: list[str] | None = None):
    import gradio as gr

    def ui_predict(path):
        if not path:
            return None, None, ""
        try:
            prediction, note = grader.predict(grader.read_upload(path))
        except ImageLoadError as err:
            raise gr.Error(str(err)) from None
        return prediction.side, prediction.scratch or None, note

    def ui_flag(path, corrected_side, corrected_scratch, comment):
        try:
            record_id = grader.flag(grader.read_upload(path), corrected_side, corrected_scratch, comment)
        except (ImageLoadError, CorrectionError) as err:
            raise gr.Error(str(err)) from None
        return f"Saved, thank you. Record `{record_id}`."

    def api_predict(path) -> dict:
        try:
            image = grader.read_upload(path)
            prediction, note = grader.predict(image)
        except ImageLoadError as err:
            raise gr.Error(str(err)) from None
        return {"side": prediction.side, "scratch": prediction.scratch or None, "graded": bool(prediction.scratch),
                "note": note.replace("**", ""), **grader.models}

    def api_flag(path, corrected_side, corrected_scratch, comment) -> dict:
        try:
            record_id = grader.flag(grader.read_upload(path), corrected_side, corrected_scratch, comment)
        except (ImageLoadError, CorrectionError) as err:
            raise gr.Error(str(err)) from None
        return {"record_id": record_id}

    with gr.Blocks(title="phonegrade") as demo:
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
        image.change(ui_predict, image, outputs, api_visibility="private")
        grade.click(ui_predict, image, outputs, api_visibility="private")
        submit.click(ui_flag, [image, side_fix, scratch_fix, comment], status, api_visibility="private")

        # Script-friendly endpoints with plain JSON results: /predict and /flag.
        with gr.Column(visible=False):
            # gr.File, not gr.Image: the upload reaches load_image untouched, which gives the clear errors.
            api_image = gr.File(type="filepath")
            api_side, api_scratch, api_comment = gr.Textbox(), gr.Textbox(), gr.Textbox()
            api_result = gr.JSON()
            gr.Button().click(api_predict, api_image, api_result, api_name="predict")
            gr.Button().click(api_flag, [api_image, api_side, api_scratch, api_comment], api_result,
                              api_name="flag")
    return demo
