"""Images in, tensors out: safe image decoding, transforms, dataset sources and the stratified split."""

from __future__ import annotations

import functools
import io
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms import v2 as T

from .labels import canonical_label, labels_for_task

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# .heic/.heif are listed so that such files are reported (Pillow cannot decode them), not silently passed over.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".avif", ".heic", ".heif")
# Phone photos are at most ~50 MP; anything larger is refused before it is decoded.
MAX_IMAGE_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# load_image refuses anything above the limit itself, so Pillow's warning for 1×–2× the limit adds nothing.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageLoadError(ValueError):
    """A file or upload could not be turned into an RGB image."""


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB: applies EXIF orientation, flattens transparency onto white, rescales 16-bit data."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        hi = array.max() if array.size else 0.0
        if hi > 255:  # 16-bit data
            array = array * (255.0 / 65535.0)
        elif image.mode == "F" and hi <= 1.0:  # float data in [0, 1]
            array = array * 255.0
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


# Major brands of HEIF containers (iPhone photos): Pillow has no decoder for them (the pillow-heif plugin does).
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")


def _unidentified(head: bytes) -> str:
    """Why Pillow found no decoder for a file, from its first bytes."""
    if not head:
        return "the file is empty"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIC/HEIF photos are not supported; convert it to JPEG or PNG"
    return "unknown or unsupported file format"


def _reason(err: Exception) -> str:
    """A decoder error as a short reason that names no file (OSError messages often carry the path)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return f"{err.__class__.__name__}: {err}"


def load_image(source: str | os.PathLike | bytes | Image.Image, name: str | None = None,
               min_side: int | None = None) -> Image.Image:
    """Decode a path, raw bytes or PIL image into an upright RGB image, or raise ImageLoadError.

    Error messages start with `name` (default: the path, or "upload" for bytes and PIL images). With `min_side`,
    a JPEG is decoded at 1/2, 1/4 or 1/8 scale where both sides stay at least `min_side` pixels.
    """
    if name is None:
        name = "upload" if isinstance(source, (bytes, Image.Image)) else str(source)
    try:
        if isinstance(source, Image.Image):
            image = source
        else:
            fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
            with fp:
                try:
                    image = Image.open(fp)
                except UnidentifiedImageError:
                    fp.seek(0)
                    raise ImageLoadError(f"{name}: not a readable image ({_unidentified(fp.read(16))})") from None
                # Pillow only warns between 1× and 2× its limit; refuse everything above it before decoding.
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ImageLoadError(f"{name}: image is too large ({image.width}×{image.height} pixels; "
                                         f"the limit is {MAX_IMAGE_PIXELS:,})")
                if min_side and image.format == "JPEG":
                    # Scaling inside the JPEG decoder: a 12 MP photo for a 128 px model decodes several times faster.
                    image.draft(None, (min_side, min_side))
                # Image.open stands on the first frame: an animation is graded by it, its other frames are not read.
                image.load()
        if image.width < 1 or image.height < 1:
            raise ImageLoadError(f"{name}: image has no pixels")
        return to_rgb(image)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageLoadError(f"{name}: image is too large (the limit is {MAX_IMAGE_PIXELS:,} pixels)") from err
    except FileNotFoundError as err:
        raise ImageLoadError(f"{name}: no such file") from err
    except Exception as err:  # noqa: BLE001 - hostile files make decoders raise many types (OSError, TypeError, ...)
        raise ImageLoadError(f"{name}: not a readable image ({_reason(err)})") from err


# ---------------------------------------------------------------- transforms

def decode_side(image_size: int) -> int:
    """The smallest side a photo is decoded at for a model of `image_size` (`load_image(min_side=...)`): twice
    the input, so that crops and resizing still start from more pixels than they produce."""
    return 2 * image_size


def shrink_large(image: Image.Image, min_side: int) -> Image.Image:
    """Box-average a photo down by a whole factor while its short side stays ≥ `min_side`: resizing a 12 MP
    photo to the model input otherwise costs more than the model."""
    factor = min(image.size) // min_side
    return image.reduce(factor) if factor >= 2 else image


def _as_tensor(image_size: int) -> list:
    """The first steps of every transform: shrink a large photo, then PIL → uint8 tensor."""
    return [functools.partial(shrink_large, min_side=decode_side(image_size)), T.PILToTensor()]


INTERPOLATIONS = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its pixels. Stored in config.json; training, evaluation, prediction, export and the demo
    all build their transforms from it.

    crop_pct 1.0 squashes the whole photo to a square (nothing cut off: a phone's camera or notch may sit at the
    edge); below 1 the short side is resized to image_size / crop_pct and the centre kept, as ImageNet models are
    evaluated.
    """

    image_size: int = 224
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if not 0.5 <= self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must lie between 0.5 and 1.0, got {self.crop_pct}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need three values each, std positive")

    @classmethod
    def from_config(cls, config: dict) -> Preprocessing:
        """From a model's config.json; keys an older phonegrade did not write take their old values."""
        return cls(image_size=config["image_size"], interpolation=config.get("interpolation", "bilinear"),
                   crop_pct=float(config.get("crop_pct", 1.0)), mean=tuple(config.get("mean", IMAGENET_MEAN)),
                   std=tuple(config.get("std", IMAGENET_STD)))

    def to_config(self) -> dict:
        return {"image_size": self.image_size, "interpolation": self.interpolation, "crop_pct": self.crop_pct,
                "mean": list(self.mean), "std": list(self.std)}


AUGMENTATIONS = ("standard", "strong")


def train_transform(pre: Preprocessing, augment: str = "standard") -> T.Compose:
    """Augmentation presets.

    standard: crop, flip, rotation, brightness/contrast/hue/saturation, normalisation.
    strong: for a few hundred photos and no pretrained weights: smaller crops, a flip, one random TrivialAugment
    operation per image (colour, geometry, sharpness, ...) and random erasing, as torchvision's own training
    recipes use them.
    """
    size, interpolation = pre.image_size, INTERPOLATIONS[pre.interpolation]
    if augment == "strong":
        return T.Compose([
            *_as_tensor(size),
            T.RandomResizedCrop(size, scale=(0.25, 1.0), interpolation=interpolation, antialias=True),
            T.RandomHorizontalFlip(),
            T.TrivialAugmentWide(),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(pre.mean, pre.std),
            T.RandomErasing(p=0.25),
        ])
    if augment != "standard":
        raise ValueError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
    return T.Compose([
        *_as_tensor(size),
        T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.75, 1.333), interpolation=interpolation,
                            antialias=True),
        T.RandomHorizontalFlip(),
        T.RandomRotation(15),
        T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(pre.mean, pre.std),
    ])


def eval_transform(pre: Preprocessing) -> T.Compose:
    """Resize (the whole photo to a square, or the short side then a centre crop: `Preprocessing.crop_pct`)
    and normalise."""
    size, interpolation = pre.image_size, INTERPOLATIONS[pre.interpolation]
    if pre.crop_pct < 1.0:
        resize = [T.Resize(int(size / pre.crop_pct), interpolation=interpolation, antialias=True), T.CenterCrop(size)]
    else:
        resize = [T.Resize((size, size), interpolation=interpolation, antialias=True)]
    return T.Compose([
        *_as_tensor(size),
        *resize,
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(pre.mean, pre.std),
    ])


# ---------------------------------------------------------------- samples and datasets

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
    at reduced scale down to `decode_side(image_size)`."""

    def __init__(self, samples: Sequence[Sample], transform: Callable, image_size: int | None = None):
        self.samples = list(samples)
        self.transform = transform
        self.min_side = decode_side(image_size) if image_size else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        return self.transform(load_image(sample.load(), min_side=self.min_side)), sample.label


@dataclass
class Splits:
    train: list[Sample]
    val: list[Sample]
    labels: tuple[str, ...]
    source: str
    skipped: int = 0  # unreadable files left out of the folder listing
    revision: str | None = None  # the commit of a Hub dataset that was read


def display_name(source: str | os.PathLike) -> str:
    """How a data or model source is named in configs, cards and on the demo page: a Hub id as it is, a local
    folder by its own name (the rest of a local path means nothing on another machine)."""
    path = Path(source)
    return path.resolve().name if path.exists() else str(source)


def resolve_dataset_revision(repo_id: str, revision: str | None = None) -> str:
    """The commit a Hub dataset repo's `revision` (default: its main branch) points at now, so that what is
    read, and recorded, is one fixed version."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        return HfApi().dataset_info(repo_id, revision=revision).sha
    except RepositoryNotFoundError as err:
        raise ValueError(f"{repo_id}: no such dataset repo on the Hub (or no access)") from err
    except (HfHubHTTPError, OSError) as err:
        raise ValueError(f"could not reach the Hub for dataset {repo_id} ({err.__class__.__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}); check the network or HF_ENDPOINT, or "
                         f"use a local copy") from err


def _check_all_classes(task: str, found: set[str], where: str) -> None:
    missing = [label for label in labels_for_task(task) if label not in found]
    if missing:
        raise ValueError(f"{where}: no images for class(es) {', '.join(missing)}; "
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


def imagefolder_samples(root: Path, task: str, verify: bool = True) -> tuple[list[Sample], int]:
    """`root/<class>/*.jpg` with alias-tolerant class names. Returns samples and the count of skipped files."""
    labels = labels_for_task(task)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"{root}: expected one sub-folder per class ({', '.join(labels)}), found none")
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
    _check_all_classes(task, found, str(root))
    return samples, skipped


def stratified_split(samples: Sequence[Sample], val_fraction: float = 0.2,
                     seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Stratified by label, reproducible for a seed (scikit-learn's train_test_split)."""
    from sklearn.model_selection import train_test_split

    counts = Counter(s.label for s in samples)
    if min(counts.values()) < 2:
        raise ValueError(f"a stratified split needs at least 2 images per class, got {dict(counts)}")
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
        raise ValueError(f"expected an 'image' column, found {dataset.column_names}")
    if isinstance(dataset.features[column], ImageFeature):
        # Undecoded rows are bytes: cheap to index, decoded by load_image in the worker.
        dataset = dataset.cast_column(column, ImageFeature(decode=False))
    return [functools.partial(_read_row, dataset, i, column) for i in range(len(dataset))]


def _dataset_samples(dataset, task: str, name: str) -> list[Sample]:
    """Rows of a `datasets.Dataset` with an image column and a label column (ClassLabel or strings)."""
    from datasets import ClassLabel

    label_column = next((c for c in ("label", "labels", task, f"{task}_label") if c in dataset.column_names), None)
    if _image_column(dataset) is None or label_column is None:
        raise ValueError(f"{name}: expected an 'image' and a 'label' column, found {dataset.column_names}")
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
        raise ValueError(f"{folds}-fold cross-validation needs at least {max(folds, 2)} images per class and "
                         f"--folds ≥ 2; the smallest class has {smallest}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [([samples[i] for i in train], [samples[i] for i in val])
            for train, val in splitter.split(np.zeros(len(samples)), labels)]


def samples_digest(samples: Sequence[Sample], source: str) -> str:
    """A fingerprint of which photos, with which labels, a list holds: keys relative to the data source, so the
    same folder named by another path gives the same digest."""
    import hashlib

    lines = sorted(f"{s.key.removeprefix(str(source))}\t{s.label}" for s in samples)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def crossval_fold_record(source: Splits, val: Sequence[Sample], folds: int, seed: int, fold: int) -> dict:
    """What a cross-validation fold model records about its held-out photos (config.json `crossval_fold`), so
    that evaluate, export and ensemble score it on exactly those and never on photos it trained on."""
    return {"folds": folds, "seed": seed, "fold": fold, "held_out": len(val),
            "held_out_digest": samples_digest(val, source.source)}


def model_validation_split(config: dict, data: str | os.PathLike) -> Splits:
    """The training/validation split of `data` that a model was trained and validated with, made again: a
    cross-validation fold model's own held-out fold (checked against the digest it recorded), else the split
    its --val-fraction and --seed made (or the folder's own train/ and val/)."""
    task, revision = config["task"], config.get("dataset_revision")
    fold = config.get("crossval_fold")
    if not fold:
        training = config.get("training", {})
        return load_splits(data, task, training.get("val_fraction") or 0.2, training.get("seed") or 0, revision)
    whole = load_splits(data, task, revision=revision)  # as crossval read it: every photo, in the same order
    samples = whole.train + whole.val
    try:
        train, val = kfold_splits(samples, fold["folds"], fold["seed"])[fold["fold"] - 1]
    except (ValueError, IndexError) as err:
        raise ValueError(f"{data} cannot be split into the {fold['folds']} folds this model was "
                         f"cross-validated on ({err})") from None
    if samples_digest(val, whole.source) != fold["held_out_digest"]:
        raise ValueError(f"{data} is not the data this model was cross-validated on (its fold {fold['fold']} of "
                         f"{fold['folds']}, seed {fold['seed']}, held out other photos): scoring it here would "
                         f"count photos it trained on. Pass the same data, or score a model trained on all of it.")
    return Splits(train, val, whole.labels, whole.source, whole.skipped, whole.revision)


def load_splits(data: str | os.PathLike, task: str, val_fraction: float = 0.2, seed: int = 0,
                revision: str | None = None) -> Splits:
    """Training and validation samples from an imagefolder, a `datasets` folder on disk, or a Hub dataset id
    (read at one commit: `revision`, or the one its main branch points at now; `Splits.revision` says which).

    Imagefolders with `train/` and `val/` (or `validation/`) keep that split; otherwise, and for datasets
    without a validation split, a stratified split of `val_fraction` is made with `seed`.
    """
    labels = labels_for_task(task)
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
        raise ValueError(f"{data}: expected a folder, not a file")
    else:
        revision = resolve_dataset_revision(str(data), revision)
        try:
            loaded = datasets.load_dataset(str(data), revision=revision)
        except Exception as err:  # noqa: BLE001 - the Hub raises many types; the message is what matters
            raise ValueError(f"could not load {data!r} as a local folder or a Hub dataset: {err}") from err
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    if "train" not in loaded:
        raise ValueError(f"{data}: dataset has no 'train' split (splits: {list(loaded)})")
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


def label_counts(samples: Sequence[Sample], num_classes: int) -> list[int]:
    counts = Counter(s.label for s in samples)
    return [counts.get(i, 0) for i in range(num_classes)]
