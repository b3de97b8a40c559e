"""`phonegrade crossval`: cross-validation of a training recipe, stratified k-fold or leave-one-group-out.

    phonegrade crossval --config recipes/side-default.yaml --data DIR --folds 5 --seeds 0 1 --output-dir OUT
    phonegrade crossval --config recipes/side-default.yaml --data DIR1 DIR2 --group-by source_repo --output-dir OUT

Every fold is an ordinary training run (the same options) on k-1 folds, validated on the held-out fold, so a few
hundred photos give a mean ± std instead of one lucky 80/20 split. With --group-by, each fold holds out one group
of photos instead (e.g. every photo of one source, the `source_repo` column of each data folder's labels.csv), so
that every photo is scored by a model that never saw a photo of its source: the figure that says how a recipe does
on photos from elsewhere. OUT/fold-S-K/ holds each run's model folder (without its resume checkpoints);
OUT/crossval.json the summary; OUT/predictions.csv every photo's out-of-fold prediction (from the run that did not
train on it). The wrong predictions made with the most confidence are printed too: on a hand-labelled set they are
the first labels to check. An interrupted run goes on with --resume: folds already finished with the same recipe
are kept, and the interrupted one continues from its last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from ..classifier import PhoneGradeClassifier
from ..confidence import CONFIDENT
from ..config import ModelConfig
from ..crossvalidation import (
    GROUPED,
    confident_errors,
    format_summary,
    out_of_fold_rows,
    read_kinds,
    summarize_folds,
    summarize_groups,
    summarize_kinds,
    write_rows,
)
from ..data import LABELS_FILE, Splits, crossval_fold_record, group_splits, kfold_splits, load_all, read_label_column
from ..errors import ConfigError, PhoneGradeError
from ..hub import display_name
from ..train_config import TrainConfig
from ..training import CHECKPOINT_DIR, train
from . import HelpFormatter, add_training_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "crossval", formatter_class=HelpFormatter,
        help="cross-validation of a training recipe: stratified k-fold, or leaving one source out",
        description="Train the same recipe on k stratified folds (per seed) and report accuracy, macro F1 and "
                    "per-class recall as mean ± std; with --group-by, hold out one group of photos (e.g. one "
                    "source) at a time and report pooled, per-group and per-kind figures. Every training option "
                    "applies to each fold except those about one run's split and output (--val-fraction, --resume, "
                    "--corrections-in-val, --crossval-summary, --calibrate-from, --push-to-hub, --private, "
                    "--force); --corrections add to every fold's training part, never to its held-out fold.")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted run in OUTPUT_DIR: keep the folds it finished with this same "
                             "recipe (options, extra data and corrections source; not the corrections' contents) and "
                             "continue the interrupted one from its last checkpoint")
    add_training_arguments(parser, single_run=False)
    parser.add_argument("--folds", type=int, default=5, help="k of the stratified k-fold split")
    parser.add_argument("--group-by", metavar="COLUMN",
                        help=f"leave one group out instead of k folds: each fold holds out every photo whose COLUMN "
                             f"(e.g. source_repo) in its data folder's {LABELS_FILE} has one value; a folder without "
                             f"{LABELS_FILE} is one group")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="repeat the k folds for each seed (fold assignment and training seed)")
    parser.add_argument("--kinds", metavar="CSV",
                        help=f"a CSV with 'file' (relative to --data) and 'kind' columns: out-of-fold accuracy is "
                             f"reported per kind of photo too (default: the 'kind' column of each data folder's "
                             f"{LABELS_FILE}, where there is one)")
    parser.add_argument("--suspect-threshold", type=float, default=CONFIDENT,
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


def photo_kinds(args: argparse.Namespace, whole: Splits, origins: list[str]) -> list[str] | None:
    """Each photo's kind: from --kinds, else from the data folders' labels.csv (None where no folder has one)."""
    if args.kinds:
        kinds = read_kinds(args.kinds, whole.source)
        return [kinds.get(s.key, "unknown") for s in whole.train]
    if not any(_has_column(Path(folder) / LABELS_FILE, "kind") for folder in set(origins)):
        return None
    return read_label_column(whole.train, origins, "kind", required=False)


def _has_column(path: Path, column: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return column in f.readline().strip().split(",")
    except (OSError, UnicodeDecodeError):
        return False


def fold_plan(args: argparse.Namespace, samples: list, origins: list[str], seed: int) -> list[tuple]:
    """(held-out group or None, train, val) per fold: leave-one-group-out with --group-by, else stratified."""
    if args.group_by:
        return group_splits(samples, read_label_column(samples, origins, args.group_by))
    return [(None, train, val) for train, val in kfold_splits(samples, args.folds, seed)]


def run(args: argparse.Namespace) -> int:
    recipe = TrainConfig.from_options(vars(args))
    out = Path(args.output_dir)
    whole, origins = load_all(args.data, args.task)
    samples = whole.train  # the whole set: the folds make their own splits
    kinds = photo_kinds(args, whole, origins)
    kind_of = dict(zip((s.key for s in samples), kinds, strict=True)) if kinds is not None else None
    fold_metrics, rows = [], []
    for seed in args.seeds:
        plan = fold_plan(args, samples, origins, seed)
        for k, (group, train_part, val) in enumerate(plan, start=1):
            name = f"fold-{seed}-{k}"
            held_out = f"group {group!r}" if group is not None else f"fold {k}/{len(plan)}"
            print(f"\n== {name}: seed {seed}, {held_out}, {len(train_part)} train / {len(val)} val", flush=True)
            fold = dataclasses.replace(recipe, seed=seed, output_dir=str(out / name), val_fraction=None,
                                       resume=args.resume)
            record = crossval_fold_record(whole, val, len(plan), seed, k,
                                          {"group_by": args.group_by, "group": group} if group is not None else None)
            folder = out / name
            if not (args.resume and finished_fold(folder, fold, record)):
                folder = train(fold, splits=Splits(train_part, val, whole.labels, whole.source,
                                                   revision=whole.revision, folders=whole.folders),
                               crossval_fold=record)
            fold_metrics.append(json.loads((folder / "metrics.json").read_text()))
            fold_rows = out_of_fold_rows(PhoneGradeClassifier.from_pretrained(folder), val, seed, k)
            if group is not None:
                fold_rows = [{**r, "group": group} for r in fold_rows]
            if kind_of is not None:
                fold_rows = [{**r, "kind": kind_of[r["image"]]} for r in fold_rows]
            rows += fold_rows
            shutil.rmtree(folder / CHECKPOINT_DIR, ignore_errors=True)  # resume state, not needed once finished
    suspects = confident_errors(rows, args.suspect_threshold)
    labels = list(whole.labels)
    figures = ({"scheme": GROUPED, "group_by": args.group_by, "folds": len(plan), **summarize_groups(rows, labels)}
               if args.group_by else {"folds": args.folds, **summarize_folds(fold_metrics, labels)})
    summary = {"task": args.task, "arch": args.arch, "data": args.data[0] if len(args.data) == 1 else args.data,
               "seeds": args.seeds, "n_images": len(samples), **figures,
               **({"per_kind": summarize_kinds(rows, labels)} if kinds is not None else {}),
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
