"""A model's config.json, typed.

`ModelConfig` holds what builds and feeds the network (task, arch, labels, preprocessing, ensemble members), as
timm's pretrained config and torchvision's weight transforms do, plus named sections that say how the model was
made: `training` (the arguments), `data` (what it was trained and validated on, and the Hub revision read),
`corrections`, `crossval` and `crossval_grouped`, `metrics`, and the phonegrade version. `from_dict` validates a
loaded file with clear errors and reads the flat layout that phonegrade 0.1 wrote; `to_dict` writes the current one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import ConfigError, ModelLoadError
from .labels import labels_for_task
from .models import check_arch
from .models.prior import FORMER_PHONE_CLASSES, check_phone_classes
from .transforms import Preprocessing
from .version import __version__

# Keys phonegrade 0.1 wrote at the top level, and the section they now belong to (under the name after the dot).
_LEGACY_KEYS = {
    "dataset": "data.name", "dataset_revision": "data.revision", "dataset_split": "data.split",
    "data_description": "data.description", "n_train": "data.n_train", "class_counts": "data.class_counts",
    "extra_train": "data.extra_train", "crossval_fold": "data.crossval_fold", "epochs_run": "training.epochs_run",
    "best_epoch": "training.best_epoch", "corrections_used": "corrections.used",
}
MAX_MEMBERS = 16


@dataclass
class ModelConfig:
    task: str
    arch: str
    labels: tuple[str, ...]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    members: int = 1  # > 1: an ensemble averaging that many models' probabilities
    phone_prior: float | None = None  # threshold of the side model's ImageNet phone prior (models.prior)
    phone_classes: tuple[int, ...] | None = None  # the ImageNet classes that prior counts as a phone
    num_parameters: int | None = None
    # How the model was made: plain data, written by training and read by cards, the demo and evaluation.
    training: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    corrections: dict | None = None
    crossval: dict | None = None  # stratified k-fold cross-validation of the recipe
    crossval_grouped: dict | None = None  # leave-one-group-out (e.g. one source at a time) of the recipe
    metrics: dict | None = None
    ensemble_members: list[dict] | None = None
    card_note: str | None = None
    phonegrade_version: str | None = None

    def __post_init__(self):
        if self.phone_prior is not None and self.phone_classes is None:
            self.phone_classes = FORMER_PHONE_CLASSES  # what a prior counted before the classes were recorded

    @property
    def image_size(self) -> int:
        return self.preprocessing.image_size

    def model_inputs(self) -> dict:
        """What decides which pixels the network sees and what its outputs mean: task, arch, labels and
        preprocessing (what an exported file records, and what ensemble members must share)."""
        return {"task": self.task, "arch": self.arch, "labels": list(self.labels), **self.preprocessing.to_config(),
                **({"phone_prior": self.phone_prior, "phone_classes": list(self.phone_classes)}
                   if self.phone_prior is not None else {})}

    def provenance(self) -> ModelConfig:
        """The same model, less what was measured of it (a new model made from it measures itself)."""
        return dataclasses.replace(self, crossval=None, crossval_grouped=None, metrics=None)

    def to_dict(self) -> dict:
        return {"library": "phonegrade", "phonegrade_version": __version__, **self.model_inputs(),
                "members": self.members, "num_parameters": self.num_parameters, "training": self.training,
                "data": self.data, "corrections": self.corrections, "crossval": self.crossval,
                "crossval_grouped": self.crossval_grouped, "metrics": self.metrics,
                "ensemble_members": self.ensemble_members, "card_note": self.card_note}

    @classmethod
    def from_dict(cls, raw: object, where: str = "config") -> ModelConfig:
        """A config.json's object, checked: a clear ModelLoadError names what is wrong."""
        if not isinstance(raw, dict):
            raise ModelLoadError(f"{where}: config.json must hold a JSON object")
        for key in ("task", "arch", "labels", "image_size"):
            if key not in raw:
                raise ModelLoadError(f"{where}: config.json lacks {key!r}; is this a phonegrade model?")
        try:
            check_arch(raw["arch"])
            expected = labels_for_task(raw["task"])
        except ConfigError as err:
            raise ModelLoadError(f"{where}: config.json names {err}") from None
        if list(raw["labels"]) != list(expected):
            raise ModelLoadError(f"{where}: labels {raw['labels']} do not match task {raw['task']!r} "
                                 f"({list(expected)})")
        if not isinstance(raw["image_size"], int) or not 16 <= raw["image_size"] <= 1024:
            raise ModelLoadError(f"{where}: image_size must be an integer between 16 and 1024")
        try:
            preprocessing = Preprocessing.from_config(raw)
        except (TypeError, ValueError) as err:
            raise ModelLoadError(f"{where}: config.json has unusable preprocessing ({err})") from None
        members = raw.get("members", 1)
        if not isinstance(members, int) or isinstance(members, bool) or not 1 <= members <= MAX_MEMBERS:
            raise ModelLoadError(f"{where}: members (ensemble size) must be an integer between 1 and {MAX_MEMBERS}")
        phone_prior = raw.get("phone_prior")
        if phone_prior is not None and (not isinstance(phone_prior, (int, float)) or not 0 < phone_prior < 1):
            raise ModelLoadError(f"{where}: phone_prior must be a number between 0 and 1")
        phone_classes = raw.get("phone_classes") if phone_prior is not None else None
        if phone_classes is not None:  # None: a model made before they were recorded (__post_init__)
            try:
                phone_classes = check_phone_classes(phone_classes)
            except ValueError as err:
                raise ModelLoadError(f"{where}: {err}") from None
        sections = {name: dict(raw.get(name) or {}) for name in ("training", "data")}
        corrections = dict(raw["corrections"]) if raw.get("corrections") else None
        for key, target in _LEGACY_KEYS.items():
            section, name = target.split(".")
            if raw.get(key) is None:
                continue
            if section == "corrections":
                if corrections is not None:
                    corrections.setdefault(name, raw[key])
            else:
                sections[section].setdefault(name, raw[key])
        return cls(task=raw["task"], arch=raw["arch"], labels=tuple(raw["labels"]), preprocessing=preprocessing,
                   members=members, phone_prior=phone_prior, phone_classes=phone_classes,
                   num_parameters=raw.get("num_parameters"),
                   training=sections["training"],
                   data=sections["data"], corrections=corrections, crossval=raw.get("crossval"),
                   crossval_grouped=raw.get("crossval_grouped"), metrics=raw.get("metrics"),
                   ensemble_members=raw.get("ensemble_members"),
                   card_note=raw.get("card_note"), phonegrade_version=raw.get("phonegrade_version"))
