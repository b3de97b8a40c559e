"""`phonegrade evaluate`: accuracy, confusion matrix and per-class report of a model on labelled photos.

    phonegrade evaluate --model runs/side --data my-photos/ --output runs/side-eval

By default it scores the model's own validation images of the data: the split its --val-fraction and --seed made,
or, for a cross-validation fold model, exactly its held-out fold.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..classifier import PhoneGradeClassifier
from ..data import model_validation_split
from ..inference import evaluate_samples
from ..metrics import compute_metrics, format_report, write_metrics
from . import MODEL_HELP, HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="accuracy, confusion matrix and per-class report of a model on data",
        description="Score a model on labelled photos: accuracy, macro F1, confusion matrix, per-class "
                    "precision/recall/F1 (scikit-learn); writes metrics.json and confusion_matrix.png.")
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--data", required=True,
                        help="imagefolder, `datasets` folder on disk, or Hub dataset id (same forms as training)")
    parser.add_argument("--split", choices=("val", "train", "all"), default="val",
                        help="which images to score: the model's own validation images (a folder without train/val "
                             "is split as training split it, with the model's seed and val fraction; a "
                             "cross-validation fold model's are its held-out fold), the rest, or all")
    parser.add_argument("--output", default=".", help="folder for metrics.json and confusion_matrix.png")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--revision", help="Hub revision of --model")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    classifier = PhoneGradeClassifier.from_pretrained(args.model, revision=args.revision)
    splits = model_validation_split(classifier.config, args.data)
    samples = {"val": splits.val, "train": splits.train, "all": splits.train + splits.val}[args.split]
    y_true, y_pred = evaluate_samples(classifier, samples, args.batch_size, args.workers, progress=None)
    metrics = compute_metrics(y_true, y_pred, classifier.labels, classifier.task, classifier.arch)
    print(format_report(metrics))
    if splits.skipped:
        print(f"\nskipped {splits.skipped} unreadable files (named in the warnings above)")
    Path(args.output).mkdir(parents=True, exist_ok=True)
    write_metrics(metrics, args.output)
    print(f"\nwrote {Path(args.output) / 'metrics.json'} and confusion_matrix.png")
    return 0
