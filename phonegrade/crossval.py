"""Stratified k-fold cross-validation of a training recipe.

    phonegrade crossval --task side --arch wearnet --data DIR --folds 5 --seeds 0 1 --output-dir OUT ...

Every fold is an ordinary `train.py` run (same arguments) on k-1 folds, validated on the held-out fold, so
a few hundred photos give a mean ± std instead of one lucky 80/20 split. OUT/fold-S-K/ holds each run's
model folder (without its resume checkpoints); OUT/crossval.json the summary; OUT/predictions.csv every photo's
out-of-fold prediction (from the run that did not train on it). The wrong predictions made with the most
confidence are printed too: on a hand-labelled set they are the first labels to check.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
from pathlib import Path

import numpy as np

from .data import Sample, Splits, crossval_fold_record, kfold_splits, load_splits


# The numbers of a crossval summary that a model's config and card carry.
CARD_KEYS = ("arch", "folds", "seeds", "n_images", "accuracy", "macro_f1", "recall")
OPTIONAL_CARD_KEYS = ("damaged_vs_clean_accuracy", "per_kind")  # scratch task; --kinds


def card_numbers(summary: dict) -> dict:
    """The part of a crossval summary that a model's config and card carry."""
    return {key: summary[key] for key in CARD_KEYS} | {key: summary[key] for key in OPTIONAL_CARD_KEYS
                                                         if key in summary}

# Training options that make no sense for a fold (resuming, corrections, uploading) are off.
SINGLE_RUN_DEFAULTS = {"resume": False, "corrections": None, "corrections_in_val": False, "push_to_hub": None,
                       "private": False, "val_fraction": None, "crossval_summary": None}


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


def read_kinds(path: str, source: str) -> dict[str, str]:
    """Sample key → kind, from a CSV with `file` (relative to the data folder) and `kind` columns, such as a
    dataset's labels.csv. Kinds name where photos come from or what they show (lab scratch, web crack, ...)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return {str(Path(source) / row["file"]): row["kind"] for row in rows}
    except (OSError, KeyError, csv.Error) as err:
        raise ValueError(f"--kinds {path}: expected a CSV with 'file' and 'kind' columns ({err})") from err


def summarize_kinds(rows: list[dict]) -> dict:
    """Out-of-fold accuracy per kind of photo (pooled over folds and seeds), and for the scratch task also
    damaged vs clean."""
    summary = {}
    for kind in sorted({r["kind"] for r in rows}):
        chosen = [r for r in rows if r["kind"] == kind]
        summary[kind] = {"n": len(chosen), "labels": sorted({r["label"] for r in chosen}),
                         "accuracy": round(sum(r["label"] == r["predicted"] for r in chosen) / len(chosen), 4)}
        if "p_no_scratch" in chosen[0]:
            clean = sum((r["label"] == "no_scratch") == (r["predicted"] == "no_scratch") for r in chosen)
            summary[kind]["damaged_vs_clean_accuracy"] = round(clean / len(chosen), 4)
    return summary


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


def format_summary(summary: dict) -> str:
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


def run(args: argparse.Namespace) -> dict:
    from .hub import PhoneGradeClassifier
    from .train import CHECKPOINT_DIR
    from .train import main as train_main

    out = Path(args.output_dir)
    source = load_splits(args.data, args.task)
    samples = source.train + source.val  # the whole set: the folds make their own splits
    kinds = read_kinds(args.kinds, source.source) if args.kinds else None
    fold_metrics, rows = [], []
    for seed in args.seeds:
        for k, (train, val) in enumerate(kfold_splits(samples, args.folds, seed), start=1):
            name = f"fold-{seed}-{k}"
            print(f"\n== {name}: seed {seed}, fold {k}/{args.folds}, {len(train)} train / {len(val)} val", flush=True)
            fold_args = argparse.Namespace(**{**vars(args), **SINGLE_RUN_DEFAULTS, "seed": seed,
                                              "output_dir": str(out / name)})
            folder = train_main(fold_args, splits=Splits(train, val, source.labels, source.source),
                                crossval_fold=crossval_fold_record(source, val, args.folds, seed, k))
            fold_metrics.append(json.loads((folder / "metrics.json").read_text()))
            fold_rows = out_of_fold_rows(PhoneGradeClassifier.from_pretrained(folder), val, seed, k)
            if kinds is not None:
                fold_rows = [{**r, "kind": kinds.get(r["image"], "unknown")} for r in fold_rows]
            rows += fold_rows
            shutil.rmtree(folder / CHECKPOINT_DIR, ignore_errors=True)  # resume state: a fold is never resumed
    suspects = confident_errors(rows, args.suspect_threshold)
    summary = {"task": args.task, "arch": args.arch, "data": str(args.data), "folds": args.folds,
               "seeds": args.seeds, "n_images": len(samples),
               **summarize_folds(fold_metrics, list(source.labels)),
               **({"per_kind": summarize_kinds(rows)} if kinds is not None else {}),
               "confident_errors": len(suspects),
               "training": {k: v for k, v in vars(args).items() if k not in ("func", "command", "data", "output_dir")}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossval.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_rows(rows, out / "predictions.csv")
    print("\n" + format_summary(summary))
    if suspects:
        print(f"\n{len(suspects)} held-out photos were predicted wrong with probability ≥ {args.suspect_threshold} "
              f"(check their labels first):")
        for r in suspects[:10]:
            confidence = r[f"p_{r['predicted']}"]
            print(f"  {r['image']}: labelled {r['label']}, predicted {r['predicted']} ({confidence:.2f})")
    print(f"\nsummary: {out / 'crossval.json'}; every photo's out-of-fold prediction: {out / 'predictions.csv'}")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .train import add_arguments as add_train_arguments

    add_train_arguments(parser, single_run=False)
    parser.add_argument("--folds", type=int, default=5, help="k of the stratified k-fold split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="repeat the k folds for each seed (fold assignment and training seed)")
    parser.add_argument("--kinds", metavar="CSV",
                        help="a CSV with 'file' (relative to --data) and 'kind' columns, e.g. a dataset's labels.csv: "
                             "out-of-fold accuracy is reported per kind of photo too")
    parser.add_argument("--suspect-threshold", type=float, default=0.8,
                        help="list held-out photos predicted wrong with at least this probability")
