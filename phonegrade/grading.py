"""Grading a phone photo, without any page: capture quality first, then the side model, then the scratch model for
front views; ask the uploader to confirm when a model is unsure, explain a grade with a heatmap, and store a
correction. `phonegrade.demo` puts a Gradio page on it; nothing here imports Gradio.
"""

from __future__ import annotations

import csv
import html
import io
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .classifier import PhoneGradeClassifier
from .confidence import DEFAULT_ASK_MARGIN, unsure
from .corrections import CorrectionStore, Prediction
from .errors import ConfigError, CorrectionError, ImageLoadError
from .explain import explanation_png
from .images import IMAGE_EXTENSIONS, load_image
from .labels import SCRATCH_LABELS, SIDE_LABELS
from .quality import QualityReport, measure_quality

DEFAULT_MAX_UPLOAD_MB = 20
DEFAULT_FLAG_LIMIT = 10  # corrections a client may send per minute
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


@dataclass
class LoadedModel:
    classifier: PhoneGradeClassifier
    model_id: str
    revision: str


def load_model(repo_or_dir: str, revision: str | None = None) -> LoadedModel:
    classifier = PhoneGradeClassifier.from_pretrained(repo_or_dir, revision=revision)
    return LoadedModel(classifier, display_id(repo_or_dir), classifier.model_revision())


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

    def explain(self, image, task: str | None = None, label: str | None = None, max_side: int = HEATMAP_MAX_SIDE,
                prediction: Prediction | None = None) -> tuple[Image.Image, str, str] | None:
        """Grad-CAM heatmap over the photo; returns (image, task, label explained). `task` None: the scratch model
        for a front view, the side model for a back view, and nothing (None) for a photo that does not look like a
        phone: there is nothing on it to explain. `label` None: for the scratch model the likelier damage (major or
        minor scratches: where the damage is), for the side model its prediction. `prediction`: the photo's, when
        it has been graded already (the page's grade), so that the models need not run again to choose."""
        if task not in (None, "side", "scratch"):
            raise ConfigError(f"task must be side or scratch, got {task!r}")
        if task is None:
            prediction = prediction or self.predict(image)[0]
            if Prediction.top(prediction.side) == "none":
                return None
            task = "scratch" if prediction.scratch else "side"
        model = self.scratch if task == "scratch" else self.side
        if label is None and task == "scratch":
            probabilities = (prediction.scratch if prediction and prediction.scratch
                             else model.classifier.predict([image], fold_batchnorm=True)[0])
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


class FlagLimit:
    """At most `count` corrections per client in any `seconds` (a sliding window), so that one client cannot
    flood the corrections store or crowd out everyone else; `check` raises CorrectionError past it."""

    def __init__(self, count: int = DEFAULT_FLAG_LIMIT, seconds: float = 60.0, clock=None):
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


@dataclass(frozen=True)
class Example:
    """A photo shown under the upload box, with what it shows where known (its folder's labels.csv)."""

    path: str
    side: str | None = None
    scratch: str | None = None


def read_examples(folder: str | os.PathLike) -> list[Example]:
    """The images of `folder`, with their `side` and `scratch` labels from its labels.csv (columns file, side,
    scratch; either may be empty) where it has one."""
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
