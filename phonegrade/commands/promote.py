"""`phonegrade promote`: whether a candidate model may replace the current one, and its release if so.

    phonegrade promote --candidate runs/cv-new --baseline runs/cv-current --candidate-model runs/side-new \
        --baseline-model user/phonegrade-side --holdout data/frozen-holdout --push-to-hub user/phonegrade-side

Both are compared on the same photos, paired (`phonegrade.promotion`): the out-of-fold predictions of the two
recipes' `phonegrade crossval` runs on the same folds (or a baseline model scored on the candidate run's photos),
and the two models on a frozen held-out folder. promotion.md and promotion.json go into the candidate run's folder
(and the candidate model's, whose card gets the report); the model is pushed only when the decision is "promote".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cards import add_promotion_to_card
from ..classifier import PhoneGradeClassifier
from ..data import load_splits
from ..errors import ConfigError, PhoneGradeError
from ..hub import display_name, push_model_folder
from ..promotion import (
    ALPHA,
    MARGIN,
    RESAMPLES,
    check_same_folds,
    compare,
    format_report,
    paired_correct,
    promotion_report,
    read_run,
    score_model,
    write_report,
)
from ..train_config import TrainConfig
from . import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "promote", formatter_class=HelpFormatter,
        help="compare a candidate model with the current one on the same photos; push it only if not worse",
        description="A paired comparison of a candidate and a baseline on the same photos (McNemar's exact test on "
                    "the photos only one of them gets right, and a paired bootstrap interval of the accuracy "
                    "difference); the decision is 'promote' only when the data show the candidate is not worse "
                    "by more than --margin on every comparison.")
    parser.add_argument("--candidate", required=True, metavar="RUN",
                        help="`phonegrade crossval` output folder of the candidate's recipe (e.g. with --corrections)")
    parser.add_argument("--baseline", required=True, metavar="RUN_OR_MODEL",
                        help="crossval output folder of the current recipe on the same data, --folds and --seeds, or "
                             "the current model (folder or Hub id), scored on the candidate run's photos (it may "
                             "have trained on them, which favours it)")
    parser.add_argument("--data", help="the photos of the runs, to score a --baseline model on (default: the data the "
                                       "candidate run recorded)")
    parser.add_argument("--candidate-model", metavar="DIR",
                        help="the model folder trained with the candidate's recipe on all the data: scored on "
                             "--holdout, given the report in its card, pushed by --push-to-hub")
    parser.add_argument("--baseline-model", metavar="MODEL",
                        help="the current model for --holdout (default: --baseline when it is a model)")
    parser.add_argument("--holdout", metavar="DATA",
                        help="frozen labelled photos neither model trained on (same forms as --data)")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help="promote only when the data show the candidate loses at most this much accuracy on "
                             "every comparison (the lower end of the paired 95%% interval of the difference)")
    parser.add_argument("--alpha", type=float, default=ALPHA,
                        help="McNemar's one-sided p below this marks a difference beyond the noise (reported)")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="paired bootstrap resamples")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="push --candidate-model here if it is promoted")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.set_defaults(run=run)


# Options about one run's split, not its recipe: a final model and its recipe's crossval differ in them by design.
SPLIT_OPTIONS = ("val_fraction", "seed")


def check_model_of_run(model_source: str, summary: dict, run: str) -> None:
    """Refuse a --candidate-model that is not the candidate run's recipe trained: another task, labels or recipe
    (the options config.json records, other than the split's)."""
    model = PhoneGradeClassifier.from_pretrained(model_source)
    if model.task != summary["task"] or list(model.labels) != list(summary["labels"]):
        raise ConfigError(f"--candidate-model {model_source} is a {model.task} model ({', '.join(model.labels)}); "
                          f"{run} cross-validated the {summary['task']} task")
    training = summary.get("training") or {}
    try:
        recipe = TrainConfig(**{**training, "task": summary["task"], "data": summary.get("data") or "",
                                "output_dir": ""})
        differ = recipe.differences(model.config.training, model.config.data.get("extra_train") or [])
    except (TypeError, PhoneGradeError) as err:
        raise ConfigError(f"{run}: its recipe cannot be compared with --candidate-model ({err})") from None
    differ = [key for key in differ if key not in SPLIT_OPTIONS]
    if differ:
        raise ConfigError(f"--candidate-model {model_source} was not trained with the recipe {run} cross-validated: "
                          f"it differs in {', '.join(differ)}")


def run(args: argparse.Namespace) -> int:
    baseline_is_run = (Path(args.baseline) / "crossval.json").is_file()
    baseline_model = args.baseline_model or (None if baseline_is_run else args.baseline)
    if args.holdout and not (args.candidate_model and baseline_model):
        raise ConfigError("--holdout scores two models: give --candidate-model, and --baseline-model when --baseline "
                          "is a crossval run")
    if args.push_to_hub and not args.candidate_model:
        raise ConfigError("--push-to-hub pushes --candidate-model: give it")
    candidate_run = read_run(args.candidate)
    summary, candidate_outcomes, _ = candidate_run
    task, labels = summary["task"], summary["labels"]
    if args.candidate_model:
        check_model_of_run(args.candidate_model, summary, args.candidate)
    if baseline_is_run:
        baseline_run = read_run(args.baseline)
        check_same_folds(args.candidate, candidate_run, args.baseline, baseline_run)
        baseline_outcomes = baseline_run[1]
    else:
        source = load_splits(args.data or summary["data"], task)
        samples = [s for s in source.train + source.val if s.key in candidate_outcomes]
        if len(samples) < len(candidate_outcomes):
            raise ConfigError(f"{len(candidate_outcomes) - len(samples)} photos of {args.candidate} are not in "
                              f"{args.data or summary['data']}: give --data, the data the run was made on")
        baseline_outcomes = score_model(PhoneGradeClassifier.from_pretrained(args.baseline), samples, labels)
    comparisons = {"cross-validation": {**compare(*paired_correct(candidate_outcomes, baseline_outcomes),
                                                 args.alpha, args.resamples, margin=args.margin),
                                         "seeds": len(summary["seeds"])}}
    if args.holdout:
        source = load_splits(args.holdout, task)
        samples = source.train + source.val
        scored = [score_model(PhoneGradeClassifier.from_pretrained(model), samples, labels)
                  for model in (args.candidate_model, baseline_model)]
        comparisons["holdout"] = compare(*paired_correct(*scored), args.alpha, args.resamples, margin=args.margin)
    report = promotion_report(display_name(args.candidate_model or args.candidate), display_name(args.baseline),
                              comparisons, args.alpha)
    if args.candidate_model:
        add_promotion_to_card(args.candidate_model, report)
    if report["decision"] == "promote" and args.push_to_hub:
        report["pushed"] = push_model_folder(args.candidate_model, args.push_to_hub, private=args.private,
                                             commit_message=f"Promote: {report['reason']}", replace=True)
    for folder in filter(None, (args.candidate, args.candidate_model)):
        write_report(folder, report)
    print(format_report(report))
    if args.push_to_hub:
        print(f"pushed to {report['pushed']}" if "pushed" in report
              else f"not pushed to {args.push_to_hub}: the decision is {report['decision']}")
    print(f"report: {Path(args.candidate) / 'promotion.md'}")
    return 0
