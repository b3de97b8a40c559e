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
import csv
import json
from collections import defaultdict
from pathlib import Path

from .crossval import card_numbers, format_summary, summarize_folds, write_rows
from .data import display_name, model_validation_split
from .evaluate import compute_metrics, evaluate_samples, format_report, write_metrics


def _read_crossval_run(folder: Path) -> tuple[dict, list[dict]]:
    try:
        summary = json.loads((folder / "crossval.json").read_text())
        with open(folder / "predictions.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{folder}: not a `phonegrade crossval` output folder ({err})") from err
    if not rows or "labels" not in summary:
        raise ValueError(f"{folder}: crossval.json or predictions.csv is incomplete")
    return summary, rows


def combine_crossval(folders: list[str | Path]) -> tuple[dict, list[dict]]:
    """Cross-validation summary and out-of-fold rows of the mean probabilities of several crossval runs.

    The runs must cover the same photos with the same fold assignment (same data, --folds and --seeds)."""
    if len(folders) < 2:
        raise ValueError("combining cross-validation runs needs at least two of them")
    runs = [(Path(folder), *_read_crossval_run(Path(folder))) for folder in folders]
    first_folder, first, first_rows = runs[0]
    labels = first["labels"]
    folds_of = {(r["seed"], r["image"]): r["fold"] for r in first_rows}
    for folder, summary, rows in runs[1:]:
        for key in ("task", "folds", "seeds", "n_images", "labels"):
            if summary.get(key) != first.get(key):
                raise ValueError(f"{folder} and {first_folder} differ in {key} ({summary.get(key)!r} vs "
                                 f"{first.get(key)!r}): only runs on the same folds can be combined")
        if {(r["seed"], r["image"]): r["fold"] for r in rows} != folds_of:
            raise ValueError(f"{folder} and {first_folder} hold out different photos in their folds")
    sums: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * len(labels))
    truth = {}
    for _, _, rows in runs:
        for r in rows:
            key = (int(r["seed"]), int(r["fold"]), r["image"])
            truth[key] = r["label"]
            for i, label in enumerate(labels):
                sums[key][i] += float(r[f"p_{label}"]) / len(runs)
    combined, by_fold = [], defaultdict(lambda: ([], []))
    for (seed, fold, image), probs in sorted(sums.items()):
        predicted = max(range(len(labels)), key=probs.__getitem__)
        combined.append({"seed": seed, "fold": fold, "image": image, "label": truth[(seed, fold, image)],
                         "predicted": labels[predicted],
                         **{f"p_{label}": round(p, 4) for label, p in zip(labels, probs, strict=True)}})
        y_true, y_pred = by_fold[(seed, fold)]
        y_true.append(labels.index(truth[(seed, fold, image)]))
        y_pred.append(predicted)
    fold_metrics = [compute_metrics(y_true, y_pred, labels, first["task"], first["arch"])
                    for y_true, y_pred in by_fold.values()]
    summary = {"task": first["task"], "arch": first["arch"], "data": first.get("data"), "folds": first["folds"],
               "seeds": first["seeds"], "n_images": first["n_images"], "members": len(runs),
               **summarize_folds(fold_metrics, labels),
               "member_runs": [{"run": str(folder), "accuracy": run_summary["accuracy"]}
                               for folder, run_summary, _ in runs],
               "training": first.get("training", {})}
    return summary, combined


def _validation_record(config: dict) -> dict:
    """What decides a model's validation split: its cross-validation fold, or its data, fraction and seed."""
    training = config.get("training", {})
    return {"dataset": config.get("dataset"), "crossval_fold": config.get("crossval_fold"),
            "val_fraction": training.get("val_fraction"), "seed": training.get("seed")}


def _check_shared_split(members) -> None:
    """All members must have been validated on the same split: the ensemble is scored on it."""
    first = _validation_record(members[0].config)
    for member in members[1:]:
        if _validation_record(member.config) != first:
            raise ValueError(f"{member.source} was validated on another split than {members[0].source} "
                             f"({_validation_record(member.config)} vs {first}); train the members with the same "
                             f"data, --val-fraction and --seed (or take the same fold of their crossval runs)")


def run(args: argparse.Namespace) -> Path:
    from .hub import PhoneGradeClassifier, write_model_card

    if args.crossval_runs and len(args.crossval_runs) != len(args.members):
        raise ValueError(f"--crossval-runs: one folder per member ({len(args.members)}), got "
                         f"{len(args.crossval_runs)}")
    members = [PhoneGradeClassifier.from_pretrained(m) for m in args.members]
    _check_shared_split(members)
    extra = {"ensemble_members": [{"source": display_name(m.source), "init_from": m.config.get("training", {}).get("init_from"),
                                   "accuracy": m.config.get("metrics", {}).get("accuracy")} for m in members]}
    if args.data_description:
        extra["data_description"] = args.data_description
    out = Path(args.output_dir)
    if args.crossval_runs:
        summary, rows = combine_crossval(args.crossval_runs)
        if summary["task"] != members[0].task:
            raise ValueError(f"--crossval-runs are for the {summary['task']} task, not {members[0].task}")
        out.mkdir(parents=True, exist_ok=True)
        (out / "crossval.json").write_text(json.dumps(summary, indent=1) + "\n")
        write_rows(rows, out / "crossval_predictions.csv")
        print(format_summary(summary) + "\n")
        extra["crossval"] = {**card_numbers(summary), "members": summary["members"]}
    model = PhoneGradeClassifier.from_members(members, extra)

    splits = model_validation_split(model.config, args.data)
    y_true, y_pred = evaluate_samples(model, splits.val, progress=not args.no_progress)
    metrics = compute_metrics(y_true, y_pred, model.labels, model.task, model.arch)
    print(format_report(metrics))
    model.config["metrics"] = {key: metrics[key] for key in ("accuracy", "macro_f1", "n_val")}
    model.save_pretrained(out)
    write_metrics(metrics, out)
    write_model_card(out, model.config, metrics)
    print(f"\nensemble of {len(members)} models: {out}")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
