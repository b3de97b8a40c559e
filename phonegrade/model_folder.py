"""The one writer of a Hub-style model folder, for trained models and ensembles alike."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .cards import write_model_card
from .classifier import PhoneGradeClassifier
from .metrics import write_metrics


def write_model_folder(folder: str | os.PathLike, classifier: PhoneGradeClassifier, metrics: dict,
                       base_model: str | None = None, history: list[dict] | None = None) -> Path:
    """model.safetensors and config.json, metrics.json and the confusion matrix, the README.md card (with its
    LICENSE), and with `history` the training log (training_log.jsonl, one epoch per line)."""
    folder = Path(folder)
    classifier.save_pretrained(folder)
    write_metrics(metrics, folder)
    write_model_card(folder, classifier.config, metrics, base_model=base_model)
    if history is not None:
        with open(folder / "training_log.jsonl", "w") as log:
            log.writelines(json.dumps(record) + "\n" for record in history)
    return folder
