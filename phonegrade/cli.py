"""The `phonegrade` command: synth, train, crossval, ensemble, evaluate, predict, export, corrections."""

from __future__ import annotations

import argparse
import json
import sys

from .labels import TASK_LABELS


def _synth(args: argparse.Namespace) -> None:
    from .synth import write_synthetic_dataset

    counts = write_synthetic_dataset(args.task, args.out, args.per_class, size=args.size, seed=args.seed,
                                     overwrite=args.overwrite)
    total = sum(sum(split.values()) for split in counts.values())
    print(f"wrote {total} synthetic {args.task} images to {args.out}: "
          + "; ".join(f"{split} {dict(c)}" for split, c in counts.items()))


def _train(args: argparse.Namespace) -> None:
    from .train import main as train_main

    train_main(args)


def _crossval(args: argparse.Namespace) -> None:
    from .crossval import run

    run(args)


def _ensemble(args: argparse.Namespace) -> None:
    from .ensemble import run

    run(args)


def _evaluate(args: argparse.Namespace) -> None:
    from .evaluate import run

    run(args)


def _predict(args: argparse.Namespace) -> int:
    from .predict import run

    return run(args)


def _export(args: argparse.Namespace) -> int:
    from .export import run

    return run(args)


def _corrections(args: argparse.Namespace) -> int:
    from .corrections import CorrectionStore, HubPusher, bound_hub_requests, latest_by_image, load_correction_rows, \
        summarize

    if args.action == "push":
        if not args.repo:
            raise ValueError("push needs --repo REPO_ID")
        bound_hub_requests()
        pusher = HubPusher(CorrectionStore(args.source), args.repo, private=args.private)
        pending = len(pusher.pending())
        pushed = pusher.push_all()
        print(f"pushed {pushed} of {pending} pending records to {args.repo}"
              + (f"; the rest stay queued ({pusher.last_error})" if pushed < pending else ""))
        return 0 if pushed == pending else 1
    if args.action == "export" and not args.out:
        raise ValueError("export needs --out FOLDER")
    rows = load_correction_rows(args.source)
    if args.action == "show":
        summary = summarize(rows)
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        print(f"{summary['records']} correction records in {args.source}")
        for task in TASK_LABELS:
            s = summary[task]
            print(f"\n{task}: {s['corrections']} corrections, {s['disagreed_with_model']} disagreeing with the model")
            for label, n in sorted(s["by_label"].items()):
                print(f"  corrected to {label:<14} {n}")
            for confusion, n in sorted(s["confusions"].items(), key=lambda kv: -kv[1]):
                print(f"  model said {confusion:<32} {n}")
        return 0
    # export: a `datasets` folder, either all fields or (with --task) an image/label set ready for --data
    import datasets

    if args.task:
        latest = list(latest_by_image(rows, args.task).values())
        names = list(TASK_LABELS[args.task])
        features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
        dataset = datasets.Dataset.from_dict(
            {"image": [r["image"] for r in latest], "label": [names.index(r[f"corrected_{args.task}"]) for r in latest]},
            features=features)
    else:
        dataset = datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({})
    dataset.save_to_disk(args.out)
    print(f"exported {len(dataset)} rows to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .crossval import add_arguments as add_crossval_arguments
    from .ensemble import add_arguments as add_ensemble_arguments
    from .evaluate import add_arguments as add_evaluate_arguments
    from .export import add_arguments as add_export_arguments
    from .predict import add_arguments as add_predict_arguments
    from .train import add_arguments as add_train_arguments

    parser = argparse.ArgumentParser(prog="phonegrade", description="Grade photos of mobile phones.")
    parser.add_argument("--version", action="version", version=f"phonegrade {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    formatter = argparse.ArgumentDefaultsHelpFormatter

    synth = commands.add_parser("synth", formatter_class=formatter,
                                help="write a procedurally generated dataset (for demos and tests)",
                                description="Render synthetic phone photos into DIR/{train,val}/{class}/*.png "
                                            "(80/20, stratified). Not real photos: for demos and tests.")
    synth.add_argument("--task", required=True, choices=sorted(TASK_LABELS))
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--per-class", type=int, default=100, help="images per class")
    synth.add_argument("--size", type=int, default=128, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    synth.set_defaults(func=_synth)

    train = commands.add_parser("train", formatter_class=formatter, help="train a classifier (see train --help)",
                                description="Train a classifier; same as `accelerate launch phonegrade/train.py`.")
    add_train_arguments(train)
    train.set_defaults(func=_train)

    crossval = commands.add_parser("crossval", formatter_class=formatter,
                                   help="stratified k-fold cross-validation of a training recipe",
                                   description="Train the same recipe on k stratified folds (per seed) and "
                                               "report accuracy, macro F1 and per-class recall as mean ± std.")
    add_crossval_arguments(crossval)
    crossval.set_defaults(func=_crossval)

    ensemble = commands.add_parser("ensemble", formatter_class=formatter,
                                   help="one model that averages the probabilities of several trained models",
                                   description="Build a model folder whose prediction is the mean of its members' "
                                               "class probabilities, score it on the members' validation split "
                                               "and, with --crossval-runs, by cross-validation.")
    add_ensemble_arguments(ensemble)
    ensemble.set_defaults(func=_ensemble)

    evaluate = commands.add_parser("evaluate", formatter_class=formatter,
                                   help="accuracy, confusion matrix and per-class report of a model on data")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(func=_evaluate)

    predict = commands.add_parser("predict", formatter_class=formatter,
                                  help="per-class probabilities for images, folders or `datasets` folders",
                                  description="Per-class probabilities, in batches; `accelerate launch -m "
                                              "phonegrade.predict ...` splits the images across processes.")
    add_predict_arguments(predict)
    predict.set_defaults(func=_predict)

    export = commands.add_parser("export", formatter_class=formatter,
                                 help="export a model to ONNX or TorchScript (optionally int8) and check it agrees",
                                 description="Write an ONNX or TorchScript copy of a model (fp32, or int8 with "
                                             "--int8), then compare it with the original on images and print "
                                             "top-1 agreement and the largest probability difference.")
    add_export_arguments(export)
    export.set_defaults(func=_export)

    corrections = commands.add_parser(
        "corrections", formatter_class=formatter, help="show, export or push users' corrections",
        description="show: counts per task and corrected label, and disagreement with the model. "
                    "export: save to a `datasets` folder (with --task: image/label pairs usable as --data). "
                    "push: upload records not yet in the Hub dataset repo.")
    corrections.add_argument("action", choices=("show", "export", "push"))
    corrections.add_argument("--source", default="data/corrections",
                             help="corrections folder (or, for show/export, a Hub dataset id)")
    corrections.add_argument("--out", help="export: output folder")
    corrections.add_argument("--task", choices=sorted(TASK_LABELS), help="export: one task's image/label pairs")
    corrections.add_argument("--repo", help="push: Hub dataset repo id")
    corrections.add_argument("--private", action="store_true", help="push: create the repo as private")
    corrections.add_argument("--json", action="store_true", help="show: print JSON")
    corrections.set_defaults(func=_corrections)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .corrections import CorrectionError
    from .data import ImageLoadError
    from .hub import ModelLoadError
    from .models import PretrainedWeightsError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ModelLoadError, PretrainedWeightsError, ImageLoadError, ValueError, FileNotFoundError,
            FileExistsError, CorrectionError) as err:
        print(f"phonegrade {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
