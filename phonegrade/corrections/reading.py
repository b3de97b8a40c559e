"""Reading corrections back (a folder or a Hub dataset) and merging them into training."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from ..data import Sample, stratified_split
from ..duplicates import difference_hash, near_duplicate_of_any
from ..errors import CorrectionError
from ..images import load_image
from ..labels import TASK_LABELS
from .store import LABELS_ONLY_DIR, LABELS_ONLY_FILE, PHOTO_METADATA, RECORDS_DIR, SOURCES, content_hash


def load_correction_rows(repo_or_dir: str | os.PathLike, token: str | None = None,
                         revision: str | None = None) -> list[dict]:
    """All correction rows of a local corrections folder or a Hub dataset repo (at `revision`, a commit, when
    given), through `datasets`: the photo records (the imagefolder, `image` a PIL image) and the records without
    a photo (their JSON-lines files, `image` None). Each row has the metadata fields; rows of records written
    before consent was asked for lack `licence` and `photo_stored`."""
    import datasets

    path = Path(repo_or_dir)
    try:
        if path.is_dir():
            photos = (datasets.load_dataset("imagefolder", data_dir=str(path / RECORDS_DIR), split="train")
                      if any((path / RECORDS_DIR).glob(f"*/*/{PHOTO_METADATA}")) else [])
            files = sorted(str(p) for p in (path / LABELS_ONLY_DIR).glob(f"*/*/{LABELS_ONLY_FILE}"))
            labels_only = datasets.load_dataset("json", data_files=files, split="train") if files else []
        else:
            from huggingface_hub import HfApi

            repo, api = str(repo_or_dir), HfApi(token=token)
            revision = revision or api.dataset_info(repo).sha  # both kinds of record from one commit
            files = api.list_repo_files(repo, repo_type="dataset", revision=revision)
            photos = (datasets.load_dataset(repo, split="train", token=token, revision=revision)
                      if any(f.startswith(f"{RECORDS_DIR}/") and f.endswith(PHOTO_METADATA) for f in files) else [])
            label_files = [f"hf://datasets/{repo}@{revision}/{f}" for f in files
                           if f.startswith(f"{LABELS_ONLY_DIR}/") and f.endswith(LABELS_ONLY_FILE)]
            labels_only = (datasets.load_dataset("json", data_files=label_files, split="train", token=token)
                           if label_files else [])
    except Exception as err:  # noqa: BLE001 - datasets/Hub raise many types; the message is what matters
        raise CorrectionError(f"could not load corrections from {repo_or_dir}: {err}") from err
    return list(photos) + [{**row, "image": None} for row in labels_only]


def has_photo(row: dict) -> bool:
    """Whether a row or record has its photo (records written before consent was asked for all do)."""
    return row.get("photo_stored") is not False


def latest_by_image(rows: Iterable[dict], task: str) -> dict[str, dict]:
    """For each content hash, the newest row that corrects `task` (a later correction overrides an older one)."""
    column = f"corrected_{task}"
    latest: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["timestamp"]):
        if row.get(column):
            latest[row["content_hash"]] = row
    return latest


def summarize(rows: list[dict]) -> dict:
    """Counts per task and corrected label, and how often the correction disagreed with the model; how many
    records have no photo (their sender did not contribute it), which no training can use; and how many came
    of the demo asking (`by_source`; records written before it asked count as flagged)."""
    summary: dict = {"records": len(rows), "without_photo": sum(not has_photo(r) for r in rows),
                     "by_source": {source: sum((r.get("source") or "flagged") == source for r in rows)
                                   for source in SOURCES}}
    for task in TASK_LABELS:
        corrected = [r for r in rows if r.get(f"corrected_{task}")]
        summary[task] = {
            "corrections": len(corrected),
            "by_label": dict(Counter(r[f"corrected_{task}"] for r in corrected)),
            "disagreed_with_model": sum(r[f"corrected_{task}"] != r[f"predicted_{task}"] for r in corrected),
            "confusions": dict(Counter(f"{r[f'predicted_{task}'] or '(not graded)'} -> {r[f'corrected_{task}']}"
                                       for r in corrected if r[f"corrected_{task}"] != r[f"predicted_{task}"])),
        }
    return summary


def _row_image(row: dict) -> Image.Image:
    return row["image"]


def merge_corrections(splits, rows: list[dict], task: str, into_val: bool = False, seed: int = 0) -> dict:
    """Add corrections for `task` to `splits` (a data.Splits) in place; returns what was done.

    One label per photo (content hash): the newest correction wins, and overrides the base data's label for
    the same photo in training. Corrections go to training only; a corrected photo that is also in the base
    validation split is left out, so validation keeps measuring what it measured, unless `into_val`
    (then corrections are split like the base data, and such photos are relabelled in validation too).
    Records without a photo have nothing to train on and are not counted here. A near-duplicate of a validation
    photo (`duplicates.difference_hash`: resized, re-encoded, slightly edited) is left out like the photo itself.
    """
    latest = latest_by_image([row for row in rows if has_photo(row)], task)
    labels = TASK_LABELS[task]
    report = {"corrections": len(latest), "added_train": 0, "added_val": 0, "relabelled": 0, "skipped_in_val": 0}
    if not latest:
        return report

    def hashes(samples):
        return {content_hash(load_image(s.load())): i for i, s in enumerate(samples)}

    train_hashes, val_hashes = hashes(splits.train), hashes(splits.val)
    # A resized or re-encoded copy of a validation photo is that photo too: training on it would flatter validation.
    val_near = [difference_hash(load_image(s.load())) for s in splits.val]
    new = []
    for digest, row in latest.items():
        label = labels.index(row[f"corrected_{task}"])
        sample = Sample(functools.partial(_row_image, row), label, f"correction:{row['record_id']}")
        if digest not in val_hashes and near_duplicate_of_any(difference_hash(_row_image(row)), val_near):
            report["skipped_in_val"] += 1
        elif digest in val_hashes:
            if into_val:
                splits.val[val_hashes[digest]] = sample
                report["relabelled"] += 1
            else:
                report["skipped_in_val"] += 1
        elif digest in train_hashes:
            splits.train[train_hashes[digest]] = sample
            report["relabelled"] += 1
        else:
            new.append(sample)
    to_val: list = []
    if into_val and len(new) >= 2 * len({s.label for s in new}) and len({s.label for s in new}) > 1:
        new, to_val = stratified_split(new, 0.2, seed)
    splits.train.extend(new)
    splits.val.extend(to_val)
    report["added_train"], report["added_val"] = len(new), len(to_val)
    return report
