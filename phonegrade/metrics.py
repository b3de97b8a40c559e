"""Metrics (scikit-learn), the text report and the confusion-matrix picture."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str], task: str,
                    arch: str) -> dict:
    """The metrics.json record: accuracy, macro F1, confusion matrix and per-class precision/recall/F1."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    indices = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=indices,
                                                                     zero_division=0)
    return {
        "task": task,
        "arch": arch,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=indices, average="macro", zero_division=0)),
        "labels": list(labels),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "n_val": len(y_true),
        **({"damaged_vs_clean_accuracy": damaged_vs_clean_accuracy(y_true, y_pred, labels)}
           if "no_scratch" in labels else {}),
    }


def damaged_vs_clean_accuracy(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> float:
    """Scratch grading as a yes/no question: is the screen damaged (any scratch or crack) or clean? A minor
    scratch graded major still counts as right here."""
    clean = list(labels).index("no_scratch")
    return sum((t == clean) == (p == clean) for t, p in zip(y_true, y_pred, strict=True)) / max(1, len(y_true))


def format_report(metrics: dict) -> str:
    labels = metrics["labels"]
    width = max(12, *(len(label) for label in labels))
    lines = [f"{metrics['task']} / {metrics['arch']}: accuracy {metrics['accuracy']:.3f} "
             f"on {metrics['n_val']} images, macro F1 {metrics['macro_f1']:.3f}"
             + (f", damaged vs clean {metrics['damaged_vs_clean_accuracy']:.3f}"
                if "damaged_vs_clean_accuracy" in metrics else ""), "",
             "confusion matrix (rows: true, columns: predicted)",
             " " * width + "".join(f"{label:>{width}}" for label in labels)]
    for label, row in zip(labels, metrics["confusion_matrix"], strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{n:>{width}}" for n in row))
    lines += ["", f"{'':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label in labels:
        c = metrics["per_class"][label]
        lines.append(f"{label:<{width}}{c['precision']:>10.3f}{c['recall']:>10.3f}{c['f1']:>10.3f}{c['support']:>10}")
    return "\n".join(lines)


def render_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path) -> None:
    """A PNG heat map of the confusion matrix (rows true, columns predicted), drawn with Pillow."""
    cell, margin = 90, 130
    n = len(labels)
    image = Image.new("RGB", (margin + n * cell + 20, margin + n * cell + 20), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    array = np.asarray(matrix, dtype=float)
    row_totals = array.sum(axis=1, keepdims=True)
    shares = np.divide(array, row_totals, out=np.zeros_like(array), where=row_totals > 0)
    for r in range(n):
        for c in range(n):
            shade = int(255 - 180 * shares[r, c])
            x, y = margin + c * cell, margin + r * cell
            draw.rectangle([x, y, x + cell, y + cell], fill=(shade, shade, 255), outline="gray")
            colour = "white" if shares[r, c] > 0.6 else "black"
            draw.text((x + cell / 2, y + cell / 2), str(int(array[r, c])), fill=colour, font=font, anchor="mm")
        draw.text((margin - 8, margin + r * cell + cell / 2), labels[r], fill="black", font=font, anchor="rm")
        draw.text((margin + r * cell + cell / 2, margin - 8), labels[r], fill="black", font=font, anchor="md")
    draw.text((margin + n * cell / 2, 20), "predicted", fill="black", font=font, anchor="mm")
    draw.text((10, margin - 30), "true", fill="black", font=font)
    image.save(path)


def write_metrics(metrics: dict, folder: str | Path) -> None:
    folder = Path(folder)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    render_confusion_matrix(metrics["confusion_matrix"], metrics["labels"], folder / "confusion_matrix.png")
