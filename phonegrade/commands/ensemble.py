"""`phonegrade ensemble`: average the class probabilities of several trained models in one model folder.

    phonegrade ensemble runs/member-1 runs/member-2 runs/member-3 --data DIR --output-dir OUT \\
        --crossval-runs runs/cv-1 runs/cv-2 runs/cv-3

The members are ordinary single models of one architecture (trained with the same data, split and recipe, but
e.g. pre-trained on different renders); OUT is a model folder like any other (`members` in its config.json). The
ensemble is scored on the members' shared validation split of DIR. `--crossval-runs` (one `phonegrade crossval`
output folder per member, all on the same folds) measures the ensemble by cross-validation: each held-out photo's
probabilities from the fold models of every member are averaged, exactly what the ensemble does at inference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..classifier import PhoneGradeClassifier
from ..config import ModelConfig
from ..crossvalidation import card_numbers, combine_crossval, format_summary, write_rows
from ..data import model_validation_split
from ..errors import ConfigError
from ..hub import display_name
from ..inference import evaluate_samples
from ..metrics import compute_metrics, format_report
from ..model_folder import write_model_folder
from . import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ensemble", formatter_class=HelpFormatter,
        help="one model that averages the probabilities of several trained models",
        description="Build a model folder whose prediction is the mean of its members' class probabilities, score "
                    "it on the members' validation split and, with --crossval-runs, by cross-validation.")
    parser.add_argument("members", nargs="+", metavar="MODEL",
                        help="model folders or Hub ids of the members (single models; same task, arch, preprocessing)")
    parser.add_argument("--output-dir", required=True, help="folder for the ensemble's model folder")
    parser.add_argument("--data", required=True,
                        help="the members' training data: the ensemble is scored on their validation split of it")
    parser.add_argument("--crossval-runs", nargs="+", metavar="DIR",
                        help="one `phonegrade crossval` output folder per member, all on the same folds: the "
                             "card then reports the ensemble's cross-validated accuracy")
    parser.add_argument("--data-description", help="what the members were trained on, for the card and the demo")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _validation_record(config: ModelConfig) -> dict:
    """What decides a model's validation split: its cross-validation fold, or its data, fraction and seed."""
    return {"dataset": config.data.get("name"), "crossval_fold": config.data.get("crossval_fold"),
            "val_fraction": config.training.get("val_fraction"), "seed": config.training.get("seed")}


def _check_shared_split(members: list[PhoneGradeClassifier]) -> None:
    """All members must have been validated on the same split: the ensemble is scored on it."""
    first = _validation_record(members[0].config)
    for member in members[1:]:
        if _validation_record(member.config) != first:
            raise ConfigError(f"{member.source} was validated on another split than {members[0].source} "
                              f"({_validation_record(member.config)} vs {first}); train the members with the same "
                              f"data, --val-fraction and --seed (or take the same fold of their crossval runs)")


def run(args: argparse.Namespace) -> int:
    if args.crossval_runs and len(args.crossval_runs) != len(args.members):
        raise ConfigError(f"--crossval-runs: one folder per member ({len(args.members)}), got "
                          f"{len(args.crossval_runs)}")
    members = [PhoneGradeClassifier.from_pretrained(m) for m in args.members]
    _check_shared_split(members)
    changes = {"ensemble_members": [{"source": display_name(m.source), "init_from": m.config.training.get("init_from"),
                                     "accuracy": (m.config.metrics or {}).get("accuracy")} for m in members]}
    if args.data_description:
        changes["data"] = {**members[0].config.data, "description": args.data_description}
    out = Path(args.output_dir)
    if args.crossval_runs:
        summary, rows = combine_crossval(args.crossval_runs)
        if summary["task"] != members[0].task:
            raise ConfigError(f"--crossval-runs are for the {summary['task']} task, not {members[0].task}")
        out.mkdir(parents=True, exist_ok=True)
        (out / "crossval.json").write_text(json.dumps(summary, indent=1) + "\n")
        write_rows(rows, out / "crossval_predictions.csv")
        print(format_summary(summary) + "\n")
        changes["crossval"] = {**card_numbers(summary), "members": summary["members"]}
    model = PhoneGradeClassifier.from_members(members, **changes)

    splits = model_validation_split(model.config, args.data)
    y_true, y_pred = evaluate_samples(model, splits.val, progress=not args.no_progress)
    metrics = compute_metrics(y_true, y_pred, model.labels, model.task, model.arch)
    print(format_report(metrics))
    model.config.metrics = {key: metrics[key] for key in ("accuracy", "macro_f1", "n_val")}
    write_model_folder(out, model, metrics)
    print(f"\nensemble of {len(members)} models: {out}")
    return 0
