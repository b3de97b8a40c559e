"""Users' corrections of wrong predictions: stored safely, loaded with `datasets`, merged into training.

Every record keeps the labels, the probabilities the models gave, the models' ids and the SHA-256 of the photo's
pixels. The photo itself is kept only when its sender agreed to contribute it under CC BY 4.0 (`consent`); without
that the record has no photo at all (not a placeholder), so nothing can train on it by mistake.

Layout of a corrections folder (the photo records are a `datasets` imagefolder, the dataset's `default` config;
the others are JSON lines, its `labels_only` config; `load_dataset(folder_or_repo, config)` reads either):

    README.md                                          dataset card (from hub_cards/dataset_card.md)
    records/<YYYY-MM-DD>/<record id>/image.png         the photo as uploaded: EXIF orientation applied, RGB,
                                                       re-encoded
    records/<YYYY-MM-DD>/<record id>/metadata.jsonl    one line: labels, probabilities, models, time, hash, licence
    labels_only/<YYYY-MM-DD>/<record id>/record.jsonl  the same line for a record without its photo

A record is written in a hidden staging folder and renamed into place in one step, so concurrent submissions
and a crash mid-write never leave a half-written record where readers look. Records are never changed once
written; a removal (`CorrectionStore.remove`) deletes one and logs it, so that the next push deletes it from the
Hub repo too.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from .cards import render_card
from .data import Sample, stratified_split
from .duplicates import difference_hash, near_duplicate_of_any
from .errors import CorrectionError
from .images import load_image
from .labels import SCRATCH_LABELS, SIDE_LABELS, TASK_LABELS

RECORDS_DIR = "records"  # records with their photo: an imagefolder
LABELS_ONLY_DIR = "labels_only"  # records without a photo: one JSON-lines file each
PHOTO_METADATA = "metadata.jsonl"
LABELS_ONLY_FILE = "record.jsonl"
STAGING_DIR = ".staging"
REMOVALS_LOG = ".removals"  # removed records (id and folder), still to be deleted from the Hub repo
MAX_COMMENT_CHARS = 500
LICENCE = "CC-BY-4.0"  # what a sender who ticks consent contributes the photo under
# How a record came: "flagged" when the user reported a prediction of their own accord, "asked" when the demo was
# unsure and asked them to confirm or correct it.
SOURCES = ("flagged", "asked")
# Every record of a kind has every field with the same type: `datasets` needs one schema across metadata files.
FIELDS = ("file_name", "record_id", "timestamp", "content_hash", "width", "height",
          "predicted_side", "side_probabilities", "corrected_side",
          "predicted_scratch", "scratch_probabilities", "corrected_scratch",
          "side_model", "side_revision", "scratch_model", "scratch_revision", "comment", "licence", "photo_stored",
          "source")


def content_hash(image: Image.Image) -> str:
    """SHA-256 of the decoded RGB pixels: the same photo hashes the same whatever file format carried it."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


HASH_KEY_FILE = ".hash-key"  # a store's secret for the keyed hashes of photos not contributed; never pushed
KEYED_PREFIX = "hmac-sha256:"


def keyed_hash(image: Image.Image, key: bytes) -> str:
    """HMAC-SHA-256 of the decoded RGB pixels under a store's secret `key`: what a record without the sender's
    consent publishes instead of `content_hash`, so that nobody holding a photo can confirm it was sent, while the
    store can still tell repeats of one photo apart."""
    import hmac

    rgb = image.convert("RGB")
    mac = hmac.new(key, f"{rgb.width}x{rgb.height}:".encode(), hashlib.sha256)
    mac.update(rgb.tobytes())
    return KEYED_PREFIX + mac.hexdigest()


def clean_comment(text: str | None) -> str:
    """Plain text only: no markup, no control characters, bounded length."""
    text = re.sub(r"<[^>]*>", "", text or "")
    text = "".join(ch for ch in text if ch.isprintable() or ch in " \n")
    return text.replace("<", "").replace(">", "").strip()[:MAX_COMMENT_CHARS]


def _check_label(task: str, label: str | None) -> str:
    if label in (None, ""):
        return ""
    if label not in TASK_LABELS[task]:
        raise CorrectionError(f"{task} label must be one of {', '.join(TASK_LABELS[task])}, got {label!r}")
    return label


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True)
class Prediction:
    """What the demo showed for a photo: probabilities per task (scratch empty when it was not graded)."""

    side: dict[str, float]
    scratch: dict[str, float]

    @staticmethod
    def top(probs: dict[str, float]) -> str:
        return max(probs, key=probs.get) if probs else ""


class CorrectionStore:
    """A corrections folder on local disk."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def hash_key(self) -> bytes:
        """The store's secret for keyed hashes: made on first use (32 random bytes, readable by its owner only),
        kept beside the records; the pusher uploads record folders only, never this file."""
        path = self.root / HASH_KEY_FILE
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
            f.flush()
            os.fsync(f.fileno())
        return path.read_bytes()

    def ensure(self) -> CorrectionStore:
        (self.root / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
        (self.root / STAGING_DIR).mkdir(exist_ok=True)
        if not (self.root / "README.md").exists():
            write_dataset_card(self.root)
        return self

    def add(self, image: Image.Image, prediction: Prediction, corrected_side: str | None = None,
            corrected_scratch: str | None = None, models: dict[str, str | None] | None = None,
            comment: str | None = None, consent: bool = False, source: str = "flagged") -> str:
        """Store one correction; returns its record id once it is safely on disk. With `consent` (the sender
        contributes the photo under CC BY 4.0) the photo is kept; without it only its labels, probabilities, the
        comment and a keyed pixel hash (`keyed_hash`) are. `source`: one of SOURCES."""
        if source not in SOURCES:
            raise CorrectionError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        corrected_side = _check_label("side", corrected_side)
        corrected_scratch = _check_label("scratch", corrected_scratch)
        if not corrected_side and not corrected_scratch:
            raise CorrectionError("pick the correct side and/or scratch label")
        rgb = image.convert("RGB")
        # A published photo may as well have its plain hash; a photo kept back gets one only this store can make.
        try:
            digest = content_hash(rgb) if consent else keyed_hash(rgb, self.hash_key())
        except OSError as err:
            raise CorrectionError(f"could not save the correction ({err.strerror or err}); "
                                  f"predictions still work") from err
        now = datetime.now(UTC)
        record_id = f"{now:%Y%m%dT%H%M%S%f}-{digest.removeprefix(KEYED_PREFIX)[:12]}-{secrets.token_hex(3)}"
        models = models or {}
        metadata = {
            "file_name": "image.png", "record_id": record_id, "timestamp": now.isoformat(timespec="microseconds"),
            "content_hash": digest, "width": rgb.width, "height": rgb.height,
            "predicted_side": Prediction.top(prediction.side), "side_probabilities": json.dumps(prediction.side),
            "corrected_side": corrected_side,
            "predicted_scratch": Prediction.top(prediction.scratch),
            "scratch_probabilities": json.dumps(prediction.scratch), "corrected_scratch": corrected_scratch,
            "side_model": str(models.get("side_model") or ""), "side_revision": str(models.get("side_revision") or ""),
            "scratch_model": str(models.get("scratch_model") or ""),
            "scratch_revision": str(models.get("scratch_revision") or ""),
            "comment": clean_comment(comment), "licence": LICENCE if consent else None, "photo_stored": consent,
            "source": source,
        }
        if consent:
            buffer = io.BytesIO()
            rgb.save(buffer, format="PNG")  # re-encoded: nothing of the uploaded file's bytes is kept
            files = {"image.png": buffer.getvalue(), PHOTO_METADATA: (json.dumps(metadata) + "\n").encode()}
            tree = RECORDS_DIR
        else:
            del metadata["file_name"]
            files = {LABELS_ONLY_FILE: (json.dumps(metadata) + "\n").encode()}
            tree = LABELS_ONLY_DIR
        try:
            self.ensure()
            staging = self.root / STAGING_DIR / record_id
            staging.mkdir()
            for name, data in files.items():
                _fsync_write(staging / name, data)
            _fsync_dir(staging)
            final = self.root / tree / f"{now:%Y-%m-%d}" / record_id
            new_day = not final.parent.exists()
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, final)  # atomic: the record appears whole or not at all
            _fsync_dir(final.parent)  # the id is returned (acknowledged) only once the rename is on disk
            if new_day:
                _fsync_dir(final.parent.parent)
        except OSError as err:
            shutil.rmtree(self.root / STAGING_DIR / record_id, ignore_errors=True)
            raise CorrectionError(f"could not save the correction ({err.strerror or err}); "
                                  f"predictions still work") from err
        return record_id

    def metadata_files(self) -> list[Path]:
        """The metadata file of every complete record: photo records, then records without a photo."""
        return (sorted((self.root / RECORDS_DIR).glob(f"*/*/{PHOTO_METADATA}"))
                + sorted((self.root / LABELS_ONLY_DIR).glob(f"*/*/{LABELS_ONLY_FILE}")))

    def records(self) -> list[dict]:
        """Every complete record, oldest first (a leftover staging folder from a crash is not a record);
        `image_path` is None for a record without its photo."""
        out = []
        for path in self.metadata_files():
            try:
                record = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
            except (OSError, ValueError, IndexError):
                continue
            record["image_path"] = str(path.parent / record["file_name"]) if record.get("file_name") else None
            out.append(record)
        return sorted(out, key=lambda r: r["timestamp"])

    def remove(self, record_id: str) -> str:
        """Delete a record (its photo and metadata); returns its folder relative to the root. The removal is
        logged first, so that the next push deletes the record from the Hub repo too, even if the Hub is
        unreachable now or this process dies before the folder is gone."""
        folder = next((path.parent for path in self.metadata_files() if path.parent.name == record_id), None)
        if folder is None:
            raise CorrectionError(f"no record {record_id!r} in {self.root}")
        relative = folder.relative_to(self.root).as_posix()
        with open(self.root / REMOVALS_LOG, "a") as log:
            log.write(f"{record_id}\t{relative}\n")
            log.flush()
            os.fsync(log.fileno())
        shutil.rmtree(folder)
        _fsync_dir(folder.parent)
        return relative

    def removals(self) -> dict[str, str]:
        """Record id → folder (relative to the root) of every record removed here."""
        path = self.root / REMOVALS_LOG
        lines = path.read_text().splitlines() if path.exists() else []
        return dict(line.split("\t", 1) for line in lines if "\t" in line)

    def clean_staging(self, older_than_s: float = 3600) -> int:
        """Remove staging folders abandoned by a crash (older than `older_than_s`)."""
        removed = 0
        for folder in (self.root / STAGING_DIR).glob("*"):
            if time.time() - folder.stat().st_mtime > older_than_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dataset_configs(photos: bool) -> list[dict] | None:
    """The dataset card's `configs`: the repo's dataset (`load_dataset(repo)`) is the imagefolder of the photo
    records. Said explicitly, because without it `datasets` picks a repo's format by its most common file
    extension, which the records without a photo (JSON lines) could make JSON. `datasets` uses one format for all
    of a repo's configs, so those records are no config of their own; an empty config is refused, so there is
    none before the first photo record."""
    return [{"config_name": "default", "data_files": [{"split": "train", "path": f"{RECORDS_DIR}/**"}]}] if photos \
        else None


def write_dataset_card(root: Path, repo_id: str | None = None, counts: dict | None = None,
                       configs: list[dict] | None = None) -> Path:
    from huggingface_hub import DatasetCardData

    card_data = DatasetCardData(license="cc-by-4.0", task_categories=["image-classification"],
                                tags=["phonegrade", "corrections", "human-feedback"],
                                pretty_name="phonegrade corrections", **({"configs": configs} if configs else {}))
    text = render_card("dataset_card.md", card_data, repo_id=repo_id, counts=counts or {},
                       side_labels=SIDE_LABELS, scratch_labels=SCRATCH_LABELS, fields=FIELDS, licence=LICENCE)
    path = root / "README.md"
    partial = path.with_name(".README.md.tmp")  # replaced in one step: a full disk never leaves a cut card
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


# ---------------------------------------------------------------- reading corrections back

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
    import functools

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


# ---------------------------------------------------------------- pushing to a Hub dataset repo

PUSHED_LOG = ".pushed"  # record ids already in the Hub repo, one per line
REMOVED_LOG = ".removed"  # ids of removed records that the Hub repo no longer holds, one per line
# The Hub asks for fewer than 100 files per commit; a record is two files (image, metadata) and each commit
# also updates the card.
MAX_FILES_PER_COMMIT = 99
MAX_RECORDS_PER_COMMIT = (MAX_FILES_PER_COMMIT - 1) // 2
HUB_TIMEOUT_S = 30.0  # bound_hub_requests without PHONEGRADE_HUB_TIMEOUT
FINAL_PUSH_BUDGET_S = 10.0  # default of HubPusher.stop


def bound_hub_requests() -> None:
    """Make every huggingface_hub request of this process fail after PHONEGRADE_HUB_TIMEOUT seconds (default
    HUB_TIMEOUT_S) spent connecting or waiting to read or write.

    huggingface_hub's shared HTTP client has no time limit, and the calls a push makes (create_repo,
    create_commit) set none, so a Hub that accepts the connection and never answers would hold the push, and the
    pusher's lock, forever. Calls that set their own limit (downloads) keep it.
    """
    from huggingface_hub import set_client_factory

    try:  # a private module: should a release move it, pushes keep huggingface_hub's own (unbounded) client
        from huggingface_hub.utils._http import default_client_factory
    except ImportError:
        logging.getLogger("phonegrade").warning("this huggingface_hub has no utils._http.default_client_factory: "
                                                "Hub requests are not bounded")
        return
    limit = float(os.environ.get("PHONEGRADE_HUB_TIMEOUT", HUB_TIMEOUT_S))

    def client_factory():
        client = default_client_factory()
        client.timeout = limit
        return client

    set_client_factory(client_factory)


def _read_ids(path: Path) -> set[str]:
    return set(path.read_text().split()) if path.exists() else set()


def _log_ids(path: Path, ids: Iterable[str]) -> None:
    """Append ids to a log once a commit has them; unlogged, the next push repeats that work (no harm)."""
    try:
        with open(path, "a") as log:
            log.write("".join(f"{record_id}\n" for record_id in ids))
            log.flush()
            os.fsync(log.fileno())
    except OSError as err:
        logging.getLogger("phonegrade").warning("could not log pushed corrections: %s", err)


class HubPusher:
    """Uploads new records to a Hub dataset repo in batches, from a background thread, and deletes removed ones.

    What has gone up, and which removals the repo has had, is logged locally after each successful commit, so
    records written or removed while the Hub is unreachable (or while the app was down) stay queued and go with a
    later commit, across restarts.
    """

    def __init__(self, store: CorrectionStore, repo_id: str, every_s: float = 300, token: str | None = None,
                 private: bool = True, batch_size: int = MAX_RECORDS_PER_COMMIT):
        import threading

        self.store, self.repo_id, self.every_s = store, repo_id, every_s
        self.token, self.private = token, private
        self.batch_size = max(1, min(batch_size, MAX_RECORDS_PER_COMMIT))
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._repo_ready = False

    def pushed_ids(self) -> set[str]:
        return _read_ids(self.store.root / PUSHED_LOG)

    def pending(self) -> list[Path]:
        """Record folders not yet in the repo (a record being removed is not pushed, even if its folder is left)."""
        done = self.pushed_ids() | set(self.store.removals())
        return [p.parent for p in self.store.metadata_files() if p.parent.name not in done]

    def pending_removals(self) -> dict[str, str]:
        """Record id → folder of removed records that the repo may still hold."""
        done = _read_ids(self.store.root / REMOVED_LOG)
        return {record_id: folder for record_id, folder in self.store.removals().items() if record_id not in done}

    def _api(self):
        from huggingface_hub import HfApi

        api = HfApi(token=self.token)
        if not self._repo_ready:
            api.create_repo(self.repo_id, repo_type="dataset", private=self.private, exist_ok=True)
            self._repo_ready = True
        return api

    def _card(self, adding: list[Path]):
        """The card of the repo as this commit leaves it: the records pushed before or now (removed ones are gone
        from the folder)."""
        from huggingface_hub import CommitOperationAdd

        in_repo = self.pushed_ids() | {folder.name for folder in adding}
        records = [r for r in self.store.records() if r["record_id"] in in_repo]
        card = write_dataset_card(self.store.root, self.repo_id, summarize(records),
                                  dataset_configs(any(has_photo(r) for r in records)))
        return CommitOperationAdd("README.md", str(card))

    def _delete_removed(self) -> int:
        """One commit deleting the folders of removed records that the repo holds; returns how many."""
        from huggingface_hub import CommitOperationDelete

        removals = self.pending_removals()
        if not removals:
            return 0
        api = self._api()
        folders = list(removals.values())
        # Asked, not taken from the push log: a record pushed by a run that died before logging it is there too.
        present = {info.path for info in api.get_paths_info(self.repo_id, folders, repo_type="dataset")}
        deletions = [CommitOperationDelete(f"{folder}/", is_folder=True) for folder in folders if folder in present]
        if deletions:
            api.create_commit(self.repo_id, [self._card([]), *deletions], repo_type="dataset",
                              commit_message=f"Remove {len(deletions)} corrections")
        _log_ids(self.store.root / REMOVED_LOG, removals)
        return len(deletions)

    def _push_records(self, batch: list[Path]) -> None:
        from huggingface_hub import CommitOperationAdd

        operations = [self._card(batch)]
        for folder in batch:
            for path in sorted(folder.iterdir()):
                operations.append(CommitOperationAdd(path.relative_to(self.store.root).as_posix(), str(path)))
        self._api().create_commit(self.repo_id, operations, repo_type="dataset",
                                  commit_message=f"Add {len(batch)} corrections")
        _log_ids(self.store.root / PUSHED_LOG, [folder.name for folder in batch])

    def _failed(self, err: Exception, what: str) -> None:
        self.last_error = f"{err.__class__.__name__}: {err}"
        logging.getLogger("phonegrade").warning("corrections push to %s failed, %s: %s", self.repo_id, what,
                                                self.last_error)

    def push_removals(self) -> bool:
        """Delete removed records from the repo now; False (they stay queued) when that failed."""
        with self._lock:
            try:
                self._delete_removed()
            except Exception as err:  # noqa: BLE001 - network, auth and server errors all mean "try later"
                self._failed(err, f"{len(self.pending_removals())} removals stay queued")
                return False
            self.last_error = None
            return True

    def push_once(self) -> int:
        """Carry out queued removals, then push up to one batch of pending records; returns how many records went
        up (0 on failure: what was queued stays queued)."""
        with self._lock:
            batch = self.pending()[: self.batch_size]
            if not batch and not self.pending_removals():
                return 0
            try:
                self._delete_removed()
                if batch:
                    self._push_records(batch)
            except Exception as err:  # noqa: BLE001 - network, auth and server errors all mean "try later"
                self._failed(err, f"{len(batch)} records and {len(self.pending_removals())} removals stay queued")
                return 0
            self.last_error = None
            return len(batch)

    def push_all(self) -> int:
        total = 0
        while (pushed := self.push_once()) > 0:
            total += pushed
        return total

    def start(self) -> HubPusher:
        import threading

        def loop():
            while not self._stop.wait(self.every_s):
                try:
                    self.push_all()
                except Exception:  # noqa: BLE001 - the thread must outlive any one failure (e.g. a full disk)
                    logging.getLogger("phonegrade").exception("corrections push failed; retrying later")

        self._thread = threading.Thread(target=loop, name="corrections-push", daemon=True)
        self._thread.start()
        return self

    def stop(self, final_push: bool = True, budget_s: float = FINAL_PUSH_BUDGET_S) -> None:
        """Stop the background pushes; with `final_push`, push what is queued, waiting at most `budget_s` seconds.

        The last push runs in a daemon thread, so that neither a Hub that never answers nor a background push
        holding the lock across such a call can keep the process from exiting; records it does not get up stay
        queued for the next start.
        """
        import threading

        self._stop.set()
        if not final_push:
            return
        last = threading.Thread(target=self.push_all, name="corrections-final-push", daemon=True)
        last.start()
        last.join(budget_s)
        if last.is_alive():
            logging.getLogger("phonegrade").warning("the last corrections push to %s did not finish in %gs; what it "
                                                    "has not sent stays queued", self.repo_id, budget_s)
