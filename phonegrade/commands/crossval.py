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
from pathlib import Path

from ..confidence import CONFIDENT
from ..crossval_loop import run_crossval
from ..crossvalidation import format_summary
from ..data import LABELS_FILE
from ..train_config import TrainConfig
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


def run(args: argparse.Namespace) -> int:
    recipe = TrainConfig.from_options(vars(args))
    done = run_crossval(recipe, folds=args.folds, seeds=args.seeds, group_by=args.group_by, kinds_csv=args.kinds,
                        resume=args.resume, suspect_threshold=args.suspect_threshold)
    out = Path(args.output_dir)
    print("\n" + format_summary(done.summary))
    if done.suspects:
        print(f"\n{len(done.suspects)} held-out photos were predicted wrong with probability ≥ "
              f"{args.suspect_threshold} (check their labels first):")
        for r in done.suspects[:10]:
            confidence = r[f"p_{r['predicted']}"]
            print(f"  {r['image']}: labelled {r['label']}, predicted {r['predicted']} ({confidence:.2f})")
    print(f"\nsummary: {out / 'crossval.json'}; every photo's out-of-fold prediction: {out / 'predictions.csv'}")
    return 0
