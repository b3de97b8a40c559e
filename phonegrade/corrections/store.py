"""The corrections folder: records written safely, read back, removed (`CorrectionStore`)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from ..cards import write_dataset_card
from ..errors import CorrectionError
from ..labels import TASK_LABELS

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
            write_dataset_card(self.root, FIELDS, LICENCE)
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
