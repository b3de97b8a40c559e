"""Labelled photos: samples from imagefolders, `datasets` folders and Hub datasets; the stratified and k-fold
splits, and the split a trained model was validated on."""

from __future__ import annotations

import csv
import functools
import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .config import ModelConfig
from .errors import DataError, ImageLoadError
from .hub import looks_like_local_path, resolve_dataset_revision
from .images import IMAGE_EXTENSIONS, load_image
from .labels import canonical_label, labels_for_task
from .transforms import decode_side, load_photo, photo_tensor


@dataclass(frozen=True)
class Sample:
    """One labelled photo. `load` returns the raw image (a path, bytes or PIL image) for `load_image`."""

    load: Callable[[], str | bytes | Image.Image]
    label: int
    key: str  # a stable identifier: the file path or "<dataset>#<row>"


def _read_path(path: str) -> str:
    return path


def _read_row(dataset, index: int, column: str):
    value = dataset[index][column]
    if isinstance(value, dict):  # datasets Image feature with decode=False
        return value.get("bytes") or value["path"]
    return value


class PhotoDataset(torch.utils.data.Dataset):
    """Samples → (tensor, label). Unreadable images raise ImageLoadError naming the file. Large JPEGs are decoded
    at reduced scale down to `decode_side(image_size)`; `hold_in_memory` keeps them decoded across epochs."""

    def __init__(self, samples: Sequence[Sample], transform: Callable, image_size: int | None = None):
        self.samples = list(samples)
        self.transform = transform
        self.image_size = image_size
        self.min_side = decode_side(image_size) if image_size else None
        self.decoded: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        image = self.decoded.get(index)
        if image is None:
            image = load_photo(sample.load(), self.image_size) if self.image_size else load_image(sample.load())
        return self.transform(image), sample.label

    def hold_in_memory(self, budget_mb: float, progress: Callable = lambda items, **_: items) -> int:
        """Decode photos once and keep them (shrunk as the transforms would, uint8) until `budget_mb` is used, so
        that later epochs skip JPEG decoding; the rest load from their files each time. Worker processes share the
        held tensors. Returns how many are held; the transforms see the same pixels either way."""
        if self.min_side is None:
            raise ValueError("hold_in_memory needs the dataset's image_size")
        budget = (budget_mb - self.held_mb) * 2**20  # photos held already count against it
        for index in progress(range(len(self.samples)), desc="decode photos"):
            if index in self.decoded:
                continue
            image = photo_tensor(load_photo(self.samples[index].load(), self.image_size), self.min_side)
            if image.numel() > budget:
                break
            budget -= image.numel()
            self.decoded[index] = image
        return len(self.decoded)

    @property
    def held_mb(self) -> float:
        """The memory the photos held decoded take (uint8: one byte a value)."""
        return sum(image.numel() for image in self.decoded.values()) / 2**20


@dataclass
class Splits:
    train: list[Sample]
    val: list[Sample]
    labels: tuple[str, ...]
    source: str
    skipped: int = 0  # unreadable files left out of the folder listing
    revision: str | None = None  # the commit of a Hub dataset that was read
    folders: tuple[str, ...] = ()  # the folders of a set combined from several (`load_sources`)


def _check_all_classes(task: str, found: set[str], where: str) -> None:
    missing = [label for label in labels_for_task(task) if label not in found]
    if missing:
        raise DataError(f"{where}: no images for class(es) {', '.join(missing)}; "
                         f"each of {', '.join(labels_for_task(task))} needs at least one")


def _list_image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not p.name.startswith("."))


def _unreadable_reason(path: Path) -> str | None:
    """Why `path` cannot be trained on, or None. A full decode: Pillow's verify() passes truncated JPEGs and
    images above the pixel limit, which would then stop training half-way."""
    try:
        load_image(path)
    except ImageLoadError as err:
        return str(err)
    return None


def imagefolder_samples(root: Path, task: str, verify: bool = True,
                        require_all_classes: bool = True) -> tuple[list[Sample], int]:
    """`root/<class>/*.jpg` with alias-tolerant class names. Returns samples and the count of skipped files."""
    labels = labels_for_task(task)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root}: expected one sub-folder per class ({', '.join(labels)}), found none")
    samples, skipped, found = [], 0, set()
    for class_dir in class_dirs:
        label = canonical_label(task, class_dir.name)
        for path in _list_image_files(class_dir):
            reason = _unreadable_reason(path) if verify else None
            if reason:
                warnings.warn(f"skipping unreadable image {reason}", stacklevel=2)
                skipped += 1
                continue
            found.add(label)
            samples.append(Sample(functools.partial(_read_path, str(path)), labels.index(label), str(path)))
    if require_all_classes:
        _check_all_classes(task, found, str(root))
    return samples, skipped


def readable_images(root: Path, task: str, label: str) -> list[Sample]:
    """Every readable image under `root`, at any depth, labelled `label` (unreadable ones skipped with a warning)."""
    index = labels_for_task(task).index(label)
    samples = []
    for path in _list_image_files(root):
        reason = _unreadable_reason(path)
        if reason:
            warnings.warn(f"skipping unreadable image {reason}", stacklevel=2)
            continue
        samples.append(Sample(functools.partial(_read_path, str(path)), index, str(path)))
    if not samples:
        raise DataError(f"{root}: no readable images")
    return samples


def stratified_split(samples: Sequence[Sample], val_fraction: float = 0.2,
                     seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Stratified by label, reproducible for a seed (scikit-learn's train_test_split)."""
    from sklearn.model_selection import train_test_split

    counts = Counter(s.label for s in samples)
    if min(counts.values()) < 2:
        raise DataError(f"a stratified split needs at least 2 images per class, got {dict(counts)}")
    indices = list(range(len(samples)))
    n_val = max(round(len(samples) * val_fraction), len(counts))
    train_idx, val_idx = train_test_split(indices, test_size=n_val, random_state=seed,
                                          stratify=[s.label for s in samples])
    return [samples[i] for i in sorted(train_idx)], [samples[i] for i in sorted(val_idx)]


def _image_column(dataset) -> str | None:
    return next((c for c in ("image", "img", "photo") if c in dataset.column_names), None)


def undecoded_image_loaders(dataset) -> list[Callable[[], str | bytes | Image.Image]]:
    """One loader per row of a `datasets.Dataset`'s image column, for `load_image`."""
    from datasets import Image as ImageFeature

    column = _image_column(dataset)
    if column is None:
        raise DataError(f"expected an 'image' column, found {dataset.column_names}")
    if isinstance(dataset.features[column], ImageFeature):
        # Undecoded rows are bytes: cheap to index, decoded by load_image in the worker.
        dataset = dataset.cast_column(column, ImageFeature(decode=False))
    return [functools.partial(_read_row, dataset, i, column) for i in range(len(dataset))]


def _dataset_samples(dataset, task: str, name: str) -> list[Sample]:
    """Rows of a `datasets.Dataset` with an image column and a label column (ClassLabel or strings)."""
    from datasets import ClassLabel

    label_column = next((c for c in ("label", "labels", task, f"{task}_label") if c in dataset.column_names), None)
    if _image_column(dataset) is None or label_column is None:
        raise DataError(f"{name}: expected an 'image' and a 'label' column, found {dataset.column_names}")
    feature = dataset.features[label_column]
    raw_labels = dataset[label_column]
    names = [feature.int2str(v) for v in raw_labels] if isinstance(feature, ClassLabel) else raw_labels
    labels = labels_for_task(task)
    samples = [Sample(load, labels.index(canonical_label(task, str(n))), f"{name}#{i}")
               for i, (n, load) in enumerate(zip(names, undecoded_image_loaders(dataset), strict=True))]
    _check_all_classes(task, {labels[s.label] for s in samples}, name)
    return samples


def _is_imagefolder(path: Path) -> bool:
    """A folder of class folders (or train/ and val/ ones), not a `datasets` folder saved with save_to_disk."""
    return path.is_dir() and not (path / "dataset_dict.json").exists() and not (path / "dataset_info.json").exists()


def kfold_splits(samples: list[Sample], folds: int, seed: int) -> list[tuple[list[Sample], list[Sample]]]:
    """(train, val) pairs of a stratified, shuffled k-fold split; every sample is in exactly one val fold."""
    from sklearn.model_selection import StratifiedKFold

    labels = [s.label for s in samples]
    smallest = min(np.bincount(labels))
    if folds < 2 or smallest < folds:
        raise DataError(f"{folds}-fold cross-validation needs at least {max(folds, 2)} images per class and "
                         f"--folds ≥ 2; the smallest class has {smallest}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [([samples[i] for i in train], [samples[i] for i in val])
            for train, val in splitter.split(np.zeros(len(samples)), labels)]


def _relative_key(key: str, folders: Sequence[str]) -> str:
    """A sample key without the path above its source folder: `side-real-extra/none/x.jpg`."""
    for folder in folders:
        if key.startswith(str(Path(folder)) + os.sep):
            return f"{Path(folder).resolve().name}{os.sep}{key.removeprefix(str(Path(folder)) + os.sep)}"
    return key


def samples_digest(samples: Sequence[Sample], source: str, folders: Sequence[str] = ()) -> str:
    """A fingerprint of which photos, with which labels, a list holds: keys relative to the data source (or to
    the folders of a combined set), so the same folders named by other paths give the same digest."""
    keys = [_relative_key(s.key, folders) if folders else s.key.removeprefix(str(source)) for s in samples]
    lines = sorted(f"{key}\t{s.label}" for key, s in zip(keys, samples, strict=True))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def crossval_fold_record(source: Splits, val: Sequence[Sample], folds: int, seed: int, fold: int,
                         group: dict | None = None) -> dict:
    """What a cross-validation fold model records about its held-out photos (config.json `crossval_fold`), so
    that evaluate, export and ensemble score it on exactly those and never on photos it trained on. `group`:
    the held-out group of a leave-one-group-out fold (`{"group_by": column, "group": name}`)."""
    return {"folds": folds, "seed": seed, "fold": fold, **(group or {}), "held_out": len(val),
            "held_out_digest": samples_digest(val, source.source, source.folders)}


# ---------------------------------------------------------------- several sources, and groups of photos

LABELS_FILE = "labels.csv"  # beside a data folder's class folders: one row per photo (file, kind, source_repo, ...)


def parse_source(spec: str) -> tuple[str, str | None]:
    """`DATA` or `DIR=LABEL` (every image under the folder DIR is LABEL) → (DATA or DIR, LABEL or None)."""
    folder, _, label = spec.rpartition("=")
    if not Path(spec).exists() and folder and Path(folder).is_dir():
        return folder, label
    return spec, None


def load_sources(specs: Sequence[str], task: str) -> tuple[list[Sample], list[str], str]:
    """Every labelled image of several sources (`DATA` or `DIR=LABEL`, see `parse_source`), combined: each source
    may lack classes, the whole must have all. Returns the samples, each one's source folder, and a name."""
    samples, origins, names = [], [], []
    for spec in specs:
        found, name = extra_training_samples(spec, task)
        samples += found
        origins += [parse_source(spec)[0]] * len(found)
        names.append(name)
    name = " + ".join(names)
    _check_all_classes(task, {labels_for_task(task)[s.label] for s in samples}, name)
    return samples, origins, name


def read_label_column(samples: Sequence[Sample], origins: Sequence[str], column: str,
                      required: bool = True) -> list[str]:
    """Each sample's value in `column` of its folder's labels.csv (e.g. `source_repo` or `kind`); a folder without
    a labels.csv (or, not `required`, without the column), and a photo it does not list, get the folder's name."""
    values: dict[str, str] = {}
    for folder in sorted(set(origins)):
        path = Path(folder) / LABELS_FILE
        if not path.is_file():
            continue
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise DataError(f"{path}: cannot read it ({err})") from err
        if rows and (column not in rows[0] or "file" not in rows[0]):
            if not required and "file" in rows[0]:
                continue
            raise DataError(f"{path} has no {column!r} or 'file' column (columns: {', '.join(rows[0])})")
        values.update({str(Path(folder) / row["file"]): row[column] for row in rows})
    return [values.get(s.key) or Path(origin).resolve().name for s, origin in zip(samples, origins, strict=True)]


def load_all(data: str | os.PathLike | Sequence[str], task: str,
             revision: str | None = None) -> tuple[Splits, list[str]]:
    """Every photo of `data` (one source, or several: `load_sources`) in one list, `Splits.train` (val empty), in
    the order cross-validation folds them; and each photo's source folder."""
    if isinstance(data, (str, os.PathLike)) or (len(data) == 1 and parse_source(data[0])[1] is None):
        source = data if isinstance(data, (str, os.PathLike)) else data[0]
        whole = load_splits(source, task, revision=revision)
        return (Splits(whole.train + whole.val, [], whole.labels, whole.source, whole.skipped, whole.revision),
                [str(source)] * (len(whole.train) + len(whole.val)))
    samples, origins, name = load_sources(data, task)
    return Splits(samples, [], labels_for_task(task), name, folders=tuple(sorted(set(origins)))), origins


def group_splits(samples: Sequence[Sample], groups: Sequence[str]) -> list[tuple[str, list[Sample], list[Sample]]]:
    """(group, train, val) for each group: the group's photos held out, every other photo trained on
    (leave-one-group-out)."""
    names = sorted(set(groups))
    if len(names) < 2:
        raise DataError(f"leave-one-group-out needs photos of at least two groups; all are {names[0]!r}")
    return [(name, [s for s, g in zip(samples, groups, strict=True) if g != name],
             [s for s, g in zip(samples, groups, strict=True) if g == name]) for name in names]


def model_validation_split(config: ModelConfig, data: str | os.PathLike) -> Splits:
    """The training/validation split of `data` that a model was trained and validated with, made again: a
    cross-validation fold model's own held-out fold (checked against the digest it recorded), else the split
    its --val-fraction and --seed made (or the folder's own train/ and val/)."""
    task, revision, fold = config.task, config.data.get("revision"), config.data.get("crossval_fold")
    if fold and fold.get("group_by"):
        raise DataError(f"this model is a leave-one-group-out fold model: it held out the photos whose "
                        f"{fold['group_by']} is {fold['group']!r} ({fold['held_out']} photos). Score it on a folder "
                        f"of those photos only, with --split all.")
    if not fold:
        training = config.training
        return load_splits(data, task, training.get("val_fraction") or 0.2, training.get("seed") or 0, revision)
    whole, _ = load_all(data, task, revision)  # as crossval read it: every photo, in the same order
    samples = whole.train
    try:
        train, val = kfold_splits(samples, fold["folds"], fold["seed"])[fold["fold"] - 1]
    except (ValueError, IndexError) as err:
        raise DataError(f"{data} cannot be split into the {fold['folds']} folds this model was "
                         f"cross-validated on ({err})") from None
    if samples_digest(val, whole.source, whole.folders) != fold["held_out_digest"]:
        raise DataError(f"{data} is not the data this model was cross-validated on (its fold {fold['fold']} of "
                         f"{fold['folds']}, seed {fold['seed']}, held out other photos): scoring it here would "
                         f"count photos it trained on. Pass the same data, or score a model trained on all of it.")
    return Splits(train, val, whole.labels, whole.source, whole.skipped, whole.revision)


def load_splits(data: str | os.PathLike | Sequence[str], task: str, val_fraction: float = 0.2, seed: int = 0,
                revision: str | None = None) -> Splits:
    """Training and validation samples from an imagefolder, a `datasets` folder on disk, or a Hub dataset id
    (read at one commit: `revision`, or the one its main branch points at now; `Splits.revision` says which).

    Imagefolders with `train/` and `val/` (or `validation/`) keep that split; otherwise, and for datasets
    without a validation split, a stratified split of `val_fraction` is made with `seed`. Several sources
    (a list; `DIR=LABEL` allowed, see `load_sources`) are combined and split so.
    """
    labels = labels_for_task(task)
    if not isinstance(data, (str, os.PathLike)):
        if len(data) == 1 and parse_source(data[0])[1] is None:
            return load_splits(data[0], task, val_fraction, seed, revision)
        samples, origins, name = load_sources(data, task)
        train, val = stratified_split(samples, val_fraction, seed)
        return Splits(train, val, labels, name, folders=tuple(sorted(set(origins))))
    path = Path(data)
    if _is_imagefolder(path):
        val_dir = next((path / n for n in ("val", "validation", "valid", "test") if (path / n).is_dir()), None)
        if (path / "train").is_dir() and val_dir is not None:
            train, skipped_train = imagefolder_samples(path / "train", task)
            val, skipped_val = imagefolder_samples(val_dir, task)
            return Splits(train, val, labels, str(path), skipped_train + skipped_val)
        samples, skipped = imagefolder_samples(path, task)
        train, val = stratified_split(samples, val_fraction, seed)
        return Splits(train, val, labels, str(path), skipped)

    import datasets

    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        revision = None  # a local copy: no commit to record
    elif path.exists():
        raise DataError(f"{data}: expected a folder, not a file")
    elif "=" in str(data):  # never in a Hub id: a DIR=LABEL whose folder is missing
        raise DataError(f"{str(data).rpartition('=')[0]}: no such folder (in {data}, read as DIR=LABEL)")
    elif looks_like_local_path(data):
        raise DataError(f"{data}: no such folder")
    else:
        try:
            revision = resolve_dataset_revision(str(data), revision)
        except DataError as err:  # say that it was looked for here first: it may be a mistyped folder
            raise DataError(f"{data}: no such local folder, and as a Hub dataset id: {err}") from err
        try:
            loaded = datasets.load_dataset(str(data), revision=revision)
        except Exception as err:  # noqa: BLE001 - the Hub raises many types; the message is what matters
            raise DataError(f"could not load {data!r} as a local folder or a Hub dataset: {err}") from err
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    if "train" not in loaded:
        raise DataError(f"{data}: dataset has no 'train' split (splits: {list(loaded)})")
    train = _dataset_samples(loaded["train"], task, f"{data}:train")
    val_name = next((n for n in ("validation", "val", "valid", "test") if n in loaded), None)
    if val_name is None:
        train, val = stratified_split(train, val_fraction, seed)
    else:
        val = _dataset_samples(loaded[val_name], task, f"{data}:{val_name}")
    return Splits(train, val, labels, str(data), revision=revision)


def load_all_samples(data: str | os.PathLike, task: str) -> list[Sample]:
    """Every labelled image of a source `load_splits` takes (an imagefolder's train/ and val/ alike)."""
    path = Path(data)
    if _is_imagefolder(path) and not (path / "train").is_dir():
        samples, _ = imagefolder_samples(path, task)  # no split: a class with one image is fine here
        return samples
    splits = load_splits(data, task)
    return splits.train + splits.val


def extra_training_samples(spec: str, task: str) -> tuple[list[Sample], str]:
    """The images of an --extra-train source and how to name it: `DATA` as `load_splits` reads it (an imagefolder
    may lack classes here), or `DATA=LABEL` for every image under the folder DATA, at any depth, as one class (e.g.
    a scratch dataset's photos, all phone fronts, as extra `front` images for the side task)."""
    folder, label = parse_source(spec)
    if label is not None:
        samples = readable_images(Path(folder), task, canonical_label(task, label))
        return samples, f"{Path(folder).resolve().name} as {label}"
    path = Path(spec)
    if _is_imagefolder(path) and not (path / "train").is_dir():
        samples, _ = imagefolder_samples(path, task, require_all_classes=False)
        return samples, path.resolve().name
    return load_all_samples(spec, task), Path(spec).resolve().name if path.exists() else spec


def label_counts(samples: Sequence[Sample], num_classes: int) -> list[int]:
    counts = Counter(s.label for s in samples)
    return [counts.get(i, 0) for i in range(num_classes)]
