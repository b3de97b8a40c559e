"""`phonegrade crossval`: stratified k-fold cross-validation of a training recipe.

    phonegrade crossval --config recipes/side-default.yaml --data DIR --folds 5 --seeds 0 1 --output-dir OUT

Every fold is an ordinary training run (the same options) on k-1 folds, validated on the held-out fold, so a few
hundred photos give a mean ± std instead of one lucky 80/20 split. OUT/fold-S-K/ holds each run's model folder
(without its resume checkpoints); OUT/crossval.json the summary; OUT/predictions.csv every photo's out-of-fold
prediction (from the run that did not train on it). The wrong predictions made with the most confidence are printed
too: on a hand-labelled set they are the first labels to check. An interrupted run goes on with --resume: folds
already finished with the same recipe are kept, and the interrupted one continues from its last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from ..classifier import PhoneGradeClassifier
from ..config import ModelConfig
from ..crossvalidation import (
    confident_errors,
    format_summary,
    out_of_fold_rows,
    read_kinds,
    summarize_folds,
    summarize_kinds,
    write_rows,
)
from ..data import Splits, crossval_fold_record, kfold_splits, load_splits
from ..errors import ConfigError, PhoneGradeError
from ..hub import display_name
from ..training import CHECKPOINT_DIR, TrainConfig, add_training_arguments, train
from . import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "crossval", formatter_class=HelpFormatter,
        help="stratified k-fold cross-validation of a training recipe",
        description="Train the same recipe on k stratified folds (per seed) and report accuracy, macro F1 and "
                    "per-class recall as mean ± std. Every training option applies to each fold except those "
                    "about one run's split and output (--val-fraction, --resume, --corrections-in-val, "
                    "--crossval-summary, --push-to-hub, --private); --corrections add to every fold's training "
                    "part, never to its held-out fold.")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted run in OUTPUT_DIR: keep the folds it finished with this same "
                             "recipe (options, extra data and corrections source; not the corrections' contents) and "
                             "continue the interrupted one from its last checkpoint")
    add_training_arguments(parser, single_run=False)
    parser.add_argument("--folds", type=int, default=5, help="k of the stratified k-fold split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="repeat the k folds for each seed (fold assignment and training seed)")
    parser.add_argument("--kinds", metavar="CSV",
                        help="a CSV with 'file' (relative to --data) and 'kind' columns, e.g. a dataset's labels.csv: "
                             "out-of-fold accuracy is reported per kind of photo too")
    parser.add_argument("--suspect-threshold", type=float, default=0.8,
                        help="list held-out photos predicted wrong with at least this probability")
    parser.set_defaults(run=run)


def finished_fold(folder: Path, fold: TrainConfig, record: dict) -> bool:
    """Whether `folder` holds this fold's finished model, trained with this same recipe (--resume keeps it)."""
    if not all((folder / name).is_file() for name in ("model.safetensors", "config.json", "metrics.json")):
        return False  # not finished: train the fold (from its last checkpoint, if it has one)
    try:
        config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text()), str(folder))
    except (ValueError, PhoneGradeError):
        return False
    if config.data.get("crossval_fold") != record:
        raise ConfigError(f"--resume: {folder} holds a model of another fold or data; use a new --output-dir")
    differ = fold.differences(config.training, config.data.get("extra_train") or [])
    if (config.corrections or {}).get("source") != (display_name(fold.corrections) if fold.corrections else None):
        differ.append("corrections")
    if differ:
        raise ConfigError(f"--resume: {folder} was trained with other options ({', '.join(differ)}); run the same "
                          f"recipe, or use a new --output-dir")
    print(f"{folder} is finished with this recipe: kept", flush=True)
    return True


def run(args: argparse.Namespace) -> int:
    recipe = TrainConfig.from_namespace(args)
    out = Path(args.output_dir)
    source = load_splits(args.data, args.task)
    samples = source.train + source.val  # the whole set: the folds make their own splits
    kinds = read_kinds(args.kinds, source.source) if args.kinds else None
    fold_metrics, rows = [], []
    for seed in args.seeds:
        for k, (train_part, val) in enumerate(kfold_splits(samples, args.folds, seed), start=1):
            name = f"fold-{seed}-{k}"
            print(f"\n== {name}: seed {seed}, fold {k}/{args.folds}, {len(train_part)} train / {len(val)} val",
                  flush=True)
            fold = dataclasses.replace(recipe, seed=seed, output_dir=str(out / name), val_fraction=None,
                                       resume=args.resume)
            record = crossval_fold_record(source, val, args.folds, seed, k)
            folder = out / name
            if not (args.resume and finished_fold(folder, fold, record)):
                folder = train(fold, splits=Splits(train_part, val, source.labels, source.source,
                                                   revision=source.revision), crossval_fold=record)
            fold_metrics.append(json.loads((folder / "metrics.json").read_text()))
            fold_rows = out_of_fold_rows(PhoneGradeClassifier.from_pretrained(folder), val, seed, k)
            if kinds is not None:
                fold_rows = [{**r, "kind": kinds.get(r["image"], "unknown")} for r in fold_rows]
            rows += fold_rows
            shutil.rmtree(folder / CHECKPOINT_DIR, ignore_errors=True)  # resume state, not needed once finished
    suspects = confident_errors(rows, args.suspect_threshold)
    summary = {"task": args.task, "arch": args.arch, "data": str(args.data), "folds": args.folds,
               "seeds": args.seeds, "n_images": len(samples),
               **summarize_folds(fold_metrics, list(source.labels)),
               **({"per_kind": summarize_kinds(rows)} if kinds is not None else {}),
               "confident_errors": len(suspects),
               "training": {k: v for k, v in dataclasses.asdict(recipe).items() if k not in ("data", "output_dir")}}
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
    return 0
