"""Cross-validation results: summaries over folds (mean ± std, per class, per kind of photo), every photo's
out-of-fold prediction, the most confident errors, and the combination of several runs on the same folds (what an
ensemble of their recipes would have scored)."""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from .data import Sample
from .errors import ConfigError
from .metrics import compute_metrics

GROUPED = "leave-one-group-out"  # a crossval summary's `scheme`; stratified k-fold summaries have none
# The numbers of a crossval summary that a model's config and card carry.
CARD_KEYS = ("arch", "folds", "seeds", "n_images", "accuracy", "macro_f1", "recall")
GROUPED_CARD_KEYS = ("scheme", "group_by", "arch", "folds", "seeds", "n_images", "pooled", "per_group")
OPTIONAL_CARD_KEYS = ("damaged_vs_clean_accuracy", "per_kind")  # scratch task; --kinds


def card_numbers(summary: dict) -> dict:
    """The part of a crossval summary that a model's config and card carry."""
    keys = GROUPED_CARD_KEYS if summary.get("scheme") == GROUPED else CARD_KEYS
    return {key: summary[key] for key in keys} | {key: summary[key] for key in OPTIONAL_CARD_KEYS if key in summary}


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}


def summarize_folds(fold_metrics: list[dict], labels: list[str]) -> dict:
    """Mean ± std over folds of accuracy, macro F1 and per-class recall, plus the pooled confusion matrix."""
    pooled = np.sum([m["confusion_matrix"] for m in fold_metrics], axis=0)
    return {
        "folds_run": len(fold_metrics),
        "accuracy": mean_std([m["accuracy"] for m in fold_metrics]),
        "macro_f1": mean_std([m["macro_f1"] for m in fold_metrics]),
        "recall": {label: mean_std([m["per_class"][label]["recall"] for m in fold_metrics]) for label in labels},
        "labels": labels,
        "pooled_confusion_matrix": pooled.tolist(),
        "fold_accuracy": [m["accuracy"] for m in fold_metrics],
        **({"damaged_vs_clean_accuracy": mean_std([m["damaged_vs_clean_accuracy"] for m in fold_metrics])}
           if all("damaged_vs_clean_accuracy" in m for m in fold_metrics) else {}),
    }


def pooled_figures(rows: list[dict], labels: list[str]) -> dict:
    """Accuracy, recall per class present, and for the scratch task damaged vs clean and the share of clean photos
    graded damaged, over out-of-fold rows pooled (every photo once per seed). The yardstick of leave-one-group-out
    runs, whose folds differ too much in size and classes for a mean over folds."""
    figures = {"n": len(rows), "labels": [label for label in labels if any(r["label"] == label for r in rows)],
               "accuracy": round(sum(r["label"] == r["predicted"] for r in rows) / len(rows), 4),
               "recall": {}}
    for label in figures["labels"]:
        chosen = [r for r in rows if r["label"] == label]
        figures["recall"][label] = round(sum(r["predicted"] == label for r in chosen) / len(chosen), 4)
    if "no_scratch" in labels:
        figures["damaged_vs_clean_accuracy"] = round(
            sum((r["label"] == "no_scratch") == (r["predicted"] == "no_scratch") for r in rows) / len(rows), 4)
        clean = [r for r in rows if r["label"] == "no_scratch"]
        if clean:
            figures["clean_graded_damaged"] = round(sum(r["predicted"] != "no_scratch" for r in clean) / len(clean), 4)
    return figures


def summarize_groups(rows: list[dict], labels: list[str], column: str = "group") -> dict:
    """A leave-one-group-out run: the pooled figures over every photo, the pooled confusion matrix, and the same
    figures for each group (`column` of the rows)."""
    matrix = [[sum(r["label"] == t and r["predicted"] == p for r in rows) for p in labels] for t in labels]
    return {"pooled": pooled_figures(rows, labels), "pooled_confusion_matrix": matrix, "labels": labels,
            "per_group": {group: pooled_figures([r for r in rows if r[column] == group], labels)
                          for group in sorted({r[column] for r in rows})}}


def read_kinds(path: str, source: str) -> dict[str, str]:
    """Sample key → kind, from a CSV with `file` (relative to the data folder) and `kind` columns, such as a
    dataset's labels.csv. Kinds name where photos come from or what they show (lab scratch, web crack, ...)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return {str(Path(source) / row["file"]): row["kind"] for row in rows}
    except (OSError, KeyError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"--kinds {path}: expected a CSV with 'file' and 'kind' columns ({err})") from err


def summarize_kinds(rows: list[dict], labels: list[str]) -> dict:
    """Out-of-fold figures per kind of photo (pooled over folds and seeds; `pooled_figures`)."""
    return {kind: pooled_figures([r for r in rows if r["kind"] == kind], labels)
            for kind in sorted({r["kind"] for r in rows})}


def out_of_fold_rows(classifier, val: list[Sample], seed: int, fold: int) -> list[dict]:
    """One row per held-out photo: its label, the fold model's prediction and probabilities."""
    probabilities = classifier.predict_proba([s.load() for s in val])
    rows = []
    for sample, row in zip(val, probabilities.tolist(), strict=True):
        rows.append({"seed": seed, "fold": fold, "image": sample.key, "label": classifier.labels[sample.label],
                     "predicted": classifier.labels[max(range(len(row)), key=row.__getitem__)],
                     **{f"p_{label}": round(p, 4) for label, p in zip(classifier.labels, row, strict=True)}})
    return rows


def confident_errors(rows: list[dict], threshold: float) -> list[dict]:
    """Wrong predictions with at least `threshold` probability, most confident first."""
    wrong = [r for r in rows if r["predicted"] != r["label"] and r[f"p_{r['predicted']}"] >= threshold]
    return sorted(wrong, key=lambda r: -r[f"p_{r['predicted']}"])


def write_rows(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _format_figures(name: str, f: dict) -> str:
    scratch = "damaged_vs_clean_accuracy" in f
    return (f"{name} {f['n']:4d} photos: accuracy {f['accuracy']:.3f}"
            + (f", damaged vs clean {f['damaged_vs_clean_accuracy']:.3f}" if scratch else "")
            + (f", clean graded damaged {f['clean_graded_damaged']:.3f}" if "clean_graded_damaged" in f else "")
            + "; recall " + ", ".join(f"{label} {r:.3f}" for label, r in f["recall"].items()))


def format_grouped_summary(summary: dict) -> str:
    lines = [f"leave-one-group-out by {summary['group_by']}, {summary['folds']} groups: every photo scored by a model "
             f"that never saw a photo of its group", _format_figures("pooled", summary["pooled"]),
             "pooled confusion matrix (rows true, columns predicted):"]
    width = max(len(label) for label in summary["labels"])
    lines += [f"  {label:>{width}} " + " ".join(f"{n:5d}" for n in row)
              for label, row in zip(summary["labels"], summary["pooled_confusion_matrix"], strict=True)]
    lines += ["  " + _format_figures(f"group {group}", f) for group, f in summary["per_group"].items()]
    lines += ["  " + _format_figures(f"kind {kind}", f) for kind, f in summary.get("per_kind", {}).items()]
    return "\n".join(lines)


def format_summary(summary: dict) -> str:
    if summary.get("scheme") == GROUPED:
        return format_grouped_summary(summary)
    acc, f1 = summary["accuracy"], summary["macro_f1"]
    binary = summary.get("damaged_vs_clean_accuracy")
    lines = [f"{summary['folds_run']} runs: accuracy {acc['mean']:.3f} ± {acc['std']:.3f}, "
             f"macro F1 {f1['mean']:.3f} ± {f1['std']:.3f}"
             + (f", damaged vs clean {binary['mean']:.3f} ± {binary['std']:.3f}" if binary else ""),
             "recall  " + "  ".join(f"{label} {r['mean']:.3f} ± {r['std']:.3f}"
                                    for label, r in summary["recall"].items()),
             "pooled confusion matrix (rows true, columns predicted):"]
    width = max(len(label) for label in summary["labels"])
    lines += [f"  {label:>{width}} " + " ".join(f"{n:5d}" for n in row)
              for label, row in zip(summary["labels"], summary["pooled_confusion_matrix"], strict=True)]
    for kind, k in summary.get("per_kind", {}).items():
        lines.append(f"  kind {kind:<14} {k['n']:4d} photos ({', '.join(k['labels'])}): accuracy {k['accuracy']:.3f}"
                     + (f", damaged vs clean {k['damaged_vs_clean_accuracy']:.3f}"
                        if "damaged_vs_clean_accuracy" in k else ""))
    return "\n".join(lines)


def read_crossval_run(folder: Path) -> tuple[dict, list[dict]]:
    try:
        summary = json.loads((folder / "crossval.json").read_text())
        with open(folder / "predictions.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{folder}: not a `phonegrade crossval` output folder ({err})") from err
    if not rows or "labels" not in summary:
        raise ConfigError(f"{folder}: crossval.json or predictions.csv is incomplete")
    return summary, rows


def combine_crossval(folders: list[str | Path]) -> tuple[dict, list[dict]]:
    """Cross-validation summary and out-of-fold rows of the mean probabilities of several crossval runs.

    The runs must cover the same photos with the same fold assignment (same data, --folds and --seeds)."""
    if len(folders) < 2:
        raise ConfigError("combining cross-validation runs needs at least two of them")
    runs = [(Path(folder), *read_crossval_run(Path(folder))) for folder in folders]
    first_folder, first, first_rows = runs[0]
    labels = first["labels"]
    folds_of = {(r["seed"], r["image"]): r["fold"] for r in first_rows}
    for folder, summary, rows in runs[1:]:
        for key in ("task", "folds", "seeds", "n_images", "labels", "scheme", "group_by"):
            if summary.get(key) != first.get(key):
                raise ConfigError(f"{folder} and {first_folder} differ in {key} ({summary.get(key)!r} vs "
                                 f"{first.get(key)!r}): only runs on the same folds can be combined")
        if {(r["seed"], r["image"]): r["fold"] for r in rows} != folds_of:
            raise ConfigError(f"{folder} and {first_folder} hold out different photos in their folds")
    sums: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * len(labels))
    truth, extra = {}, {}  # extra: a grouped run's group, and the kind, of each photo
    for _, _, rows in runs:
        for r in rows:
            key = (int(r["seed"]), int(r["fold"]), r["image"])
            truth[key] = r["label"]
            extra[key] = {column: r[column] for column in ("group", "kind") if column in r}
            for i, label in enumerate(labels):
                sums[key][i] += float(r[f"p_{label}"]) / len(runs)
    combined, by_fold = [], defaultdict(lambda: ([], []))
    for (seed, fold, image), probs in sorted(sums.items()):
        predicted = max(range(len(labels)), key=probs.__getitem__)
        combined.append({"seed": seed, "fold": fold, "image": image, "label": truth[(seed, fold, image)],
                         "predicted": labels[predicted],
                         **{f"p_{label}": round(p, 4) for label, p in zip(labels, probs, strict=True)},
                         **extra[(seed, fold, image)]})
        y_true, y_pred = by_fold[(seed, fold)]
        y_true.append(labels.index(truth[(seed, fold, image)]))
        y_pred.append(predicted)
    if first.get("scheme") == GROUPED:
        figures = {"scheme": GROUPED, "group_by": first["group_by"], **summarize_groups(combined, labels)}
    else:
        figures = summarize_folds([compute_metrics(y_true, y_pred, labels, first["task"], first["arch"])
                                   for y_true, y_pred in by_fold.values()], labels)
    summary = {"task": first["task"], "arch": first["arch"], "data": first.get("data"), "folds": first["folds"],
               "seeds": first["seeds"], "n_images": first["n_images"], "members": len(runs), **figures,
               **({"per_kind": summarize_kinds(combined, labels)} if combined and "kind" in combined[0] else {}),
               "member_runs": [{"run": str(folder), "accuracy": run_summary.get("accuracy")
                                or run_summary["pooled"]["accuracy"]} for folder, run_summary, _ in runs],
               "training": first.get("training", {})}
    return summary, combined
