"""Cross-validation of a training recipe: stratified k-fold, or leave-one-group-out (`run_crossval`).

Every fold is an ordinary training run (`training.train`) on the other folds, validated on the held-out one; its
out-of-fold predictions and metrics become the summary (`crossvalidation`). `phonegrade crossval` is its command.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .classifier import PhoneGradeClassifier
from .confidence import CONFIDENT
from .config import ModelConfig
from .crossvalidation import (
    GROUPED,
    confident_errors,
    out_of_fold_rows,
    read_kinds,
    summarize_folds,
    summarize_groups,
    summarize_kinds,
    write_rows,
)
from .data import LABELS_FILE, Splits, crossval_fold_record, group_splits, kfold_splits, load_all, read_label_column
from .errors import ConfigError, PhoneGradeError
from .hub import display_name
from .train_config import TrainConfig
from .training import CHECKPOINT_DIR, train


@dataclass
class CrossvalRun:
    """What `run_crossval` leaves in its output folder: the summary (crossval.json), every photo's out-of-fold
    prediction (predictions.csv) and those predicted wrong with confidence (`suspects`, most confident first)."""

    summary: dict
    rows: list[dict]
    suspects: list[dict]


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


def photo_kinds(kinds_csv: str | None, whole: Splits, origins: list[str]) -> list[str] | None:
    """Each photo's kind: from a CSV of file and kind (`kinds_csv`), else from the data folders' labels.csv (None
    where no folder has one)."""
    if kinds_csv:
        kinds = read_kinds(kinds_csv, whole.source)
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


def fold_plan(samples: list, origins: list[str], seed: int, folds: int, group_by: str | None) -> list[tuple]:
    """(held-out group or None, train, val) per fold: leave-one-group-out by the `group_by` column of the folders'
    labels.csv, else stratified k-fold."""
    if group_by:
        return group_splits(samples, read_label_column(samples, origins, group_by))
    return [(None, train, val) for train, val in kfold_splits(samples, folds, seed)]


def run_crossval(recipe: TrainConfig, folds: int = 5, seeds: list[int] | tuple[int, ...] = (0,),
                 group_by: str | None = None, kinds_csv: str | None = None, resume: bool = False,
                 suspect_threshold: float = CONFIDENT) -> CrossvalRun:
    """Train `recipe` once per fold (per seed) into recipe.output_dir/fold-SEED-K and write crossval.json and
    predictions.csv there. `resume`: keep the folds finished with this same recipe, continue the interrupted one."""
    out = Path(recipe.output_dir)
    data = recipe.data if isinstance(recipe.data, list) else [recipe.data]
    whole, origins = load_all(data, recipe.task)
    samples = whole.train  # the whole set: the folds make their own splits
    kinds = photo_kinds(kinds_csv, whole, origins)
    kind_of = dict(zip((s.key for s in samples), kinds, strict=True)) if kinds is not None else None
    fold_metrics, rows = [], []
    for seed in seeds:
        plan = fold_plan(samples, origins, seed, folds, group_by)
        for k, (group, train_part, val) in enumerate(plan, start=1):
            name = f"fold-{seed}-{k}"
            held_out = f"group {group!r}" if group is not None else f"fold {k}/{len(plan)}"
            print(f"\n== {name}: seed {seed}, {held_out}, {len(train_part)} train / {len(val)} val", flush=True)
            fold = dataclasses.replace(recipe, seed=seed, output_dir=str(out / name), val_fraction=None,
                                       resume=resume)
            record = crossval_fold_record(whole, val, len(plan), seed, k,
                                          {"group_by": group_by, "group": group} if group is not None else None)
            folder = out / name
            if not (resume and finished_fold(folder, fold, record)):
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
    labels = list(whole.labels)
    figures = ({"scheme": GROUPED, "group_by": group_by, "folds": len(plan), **summarize_groups(rows, labels)}
               if group_by else {"folds": folds, **summarize_folds(fold_metrics, labels)})
    suspects = confident_errors(rows, suspect_threshold)
    summary = {"task": recipe.task, "arch": recipe.arch, "data": data[0] if len(data) == 1 else data,
               "seeds": list(seeds), "n_images": len(samples), **figures,
               **({"per_kind": summarize_kinds(rows, labels)} if kinds is not None else {}),
               "confident_errors": len(suspects),
               "training": {k: v for k, v in dataclasses.asdict(recipe).items() if k not in ("data", "output_dir")}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossval.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_rows(rows, out / "predictions.csv")
    return CrossvalRun(summary, rows, suspects)
