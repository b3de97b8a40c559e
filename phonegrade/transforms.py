"""Pixels for the network: `Preprocessing` (what a model wants: size, interpolation, crop, mean and std, stored in
its config.json) and the training and evaluation transforms built from it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from PIL import Image
from torchvision.transforms import v2 as T

from .errors import ConfigError
from .images import load_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def decode_side(image_size: int) -> int:
    """The smallest side a photo is decoded at for a model of `image_size` (`load_image(min_side=...)`): twice
    the input, so that crops and resizing still start from more pixels than they produce."""
    return 2 * image_size


def load_photo(source, image_size: int, name: str | None = None) -> Image.Image:
    """A photo as a model of `image_size` starts from: decoded upright and RGB (`load_image`), at reduced scale
    where its size allows, its short side kept at least `decode_side(image_size)`. Training, prediction and the
    demo all load photos so, then apply the model's transform."""
    return load_image(source, name=name, min_side=decode_side(image_size))


def shrink_large(image: Image.Image, min_side: int) -> Image.Image:
    """Box-average a photo down by a whole factor while its short side stays ≥ `min_side`: resizing a 12 MP
    photo to the model input otherwise costs more than the model."""
    factor = min(image.size) // min_side
    return image.reduce(factor) if factor >= 2 else image


def photo_tensor(image: Image.Image | torch.Tensor, min_side: int) -> torch.Tensor:
    """The first step of every transform: a large photo shrunk by a whole factor (`shrink_large`), as a uint8
    tensor. A tensor passes through: it is a photo a dataset already holds so (`PhotoDataset.hold_in_memory`)."""
    if isinstance(image, torch.Tensor):
        return image
    return T.functional.pil_to_tensor(shrink_large(image, min_side))


def _as_tensor(image_size: int) -> list:
    return [functools.partial(photo_tensor, min_side=decode_side(image_size))]


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
            raise ConfigError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if not 0.5 <= self.crop_pct <= 1.0:
            raise ConfigError(f"crop_pct must lie between 0.5 and 1.0, got {self.crop_pct}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError("mean and std need three values each, std positive")

    @classmethod
    def from_config(cls, config: dict) -> Preprocessing:
        """From a model's config.json; keys an older phonegrade did not write take their old values."""
        return cls(image_size=config["image_size"], interpolation=config.get("interpolation", "bilinear"),
                   crop_pct=float(config.get("crop_pct", 1.0)), mean=tuple(config.get("mean", IMAGENET_MEAN)),
                   std=tuple(config.get("std", IMAGENET_STD)))

    def load(self, source, name: str | None = None) -> Image.Image:
        """A photo as this model starts from (`load_photo`)."""
        return load_photo(source, self.image_size, name)

    def input_box(self, photo_size: tuple[int, int]) -> tuple[float, float, float, float]:
        """Where the model's input comes from in a photo of `photo_size` (width, height), as (left, top, right,
        bottom) in photo pixels: the whole photo with crop_pct 1 (squashed to a square), else the centre square
        that remains once the short side is resized to image_size / crop_pct and the centre cropped."""
        width, height = photo_size
        if self.crop_pct >= 1.0:
            return 0.0, 0.0, float(width), float(height)
        side = min(photo_size) * self.image_size / int(self.image_size / self.crop_pct)
        left, top = (width - side) / 2, (height - side) / 2
        return left, top, left + side, top + side

    def to_config(self) -> dict:
        return {"image_size": self.image_size, "interpolation": self.interpolation, "crop_pct": self.crop_pct,
                "mean": list(self.mean), "std": list(self.std)}


AUGMENTATIONS = ("standard", "strong")


class RandomMirrorPad:
    """With probability `p`, shrink the photo (to `scale` of its sides) at a random place in its own frame and fill
    the rest with its mirrored edges, as some dataset exports pad photos. When only one class's photos come padded
    so, a model learns the padding as a sign of that class; trained with this, every class shows it."""

    def __init__(self, p: float, scale: tuple[float, float] = (0.55, 0.9)):
        if not 0 <= p <= 1:
            raise ConfigError(f"the mirror-padding probability must lie between 0 and 1, got {p}")
        self.p, self.scale = p, scale

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        height, width = image.shape[-2:]
        factor = self.scale[0] + (self.scale[1] - self.scale[0]) * float(torch.rand(()))
        inner_h, inner_w = max(1, int(height * factor)), max(1, int(width * factor))
        small = T.functional.resize(image, [inner_h, inner_w], antialias=True)
        top = int(torch.randint(0, height - inner_h + 1, ()))
        left = int(torch.randint(0, width - inner_w + 1, ()))
        # Reflection needs each pad narrower than the photo it mirrors: a factor above 0.5 guarantees it.
        padding = (left, width - inner_w - left, top, height - inner_h - top)
        return torch.nn.functional.pad(small[None].float(), padding, mode="reflect")[0].round().to(image.dtype)


def train_transform(pre: Preprocessing, augment: str = "standard", mirror_pad: float = 0.0) -> T.Compose:
    """Augmentation presets.

    standard: crop, flip, rotation, brightness/contrast/hue/saturation, normalisation.
    strong: for a few hundred photos and no pretrained weights: smaller crops, a flip, one random TrivialAugment
    operation per image (colour, geometry, sharpness, ...) and random erasing, as torchvision's own training
    recipes use them.
    mirror_pad: the probability of `RandomMirrorPad` before either.
    """
    size, interpolation = pre.image_size, INTERPOLATIONS[pre.interpolation]
    padding = [RandomMirrorPad(mirror_pad)] if mirror_pad else []
    if augment == "strong":
        return T.Compose([
            *_as_tensor(size),
            *padding,
            T.RandomResizedCrop(size, scale=(0.25, 1.0), interpolation=interpolation, antialias=True),
            T.RandomHorizontalFlip(),
            T.TrivialAugmentWide(),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(pre.mean, pre.std),
            T.RandomErasing(p=0.25),
        ])
    if augment != "standard":
        raise ConfigError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
    return T.Compose([
        *_as_tensor(size),
        *padding,
        T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.75, 1.333), interpolation=interpolation,
                            antialias=True),
        T.RandomHorizontalFlip(),
        T.RandomRotation(15),
        T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(pre.mean, pre.std),
    ])


def eval_transform(pre: Preprocessing, mirror_pad: float = 0.0) -> T.Compose:
    """Resize (the whole photo to a square, or the short side then a centre crop: `Preprocessing.crop_pct`)
    and normalise; mirror_pad: first `RandomMirrorPad` with that probability (training without augmentation)."""
    size, interpolation = pre.image_size, INTERPOLATIONS[pre.interpolation]
    if pre.crop_pct < 1.0:
        resize = [T.Resize(int(size / pre.crop_pct), interpolation=interpolation, antialias=True), T.CenterCrop(size)]
    else:
        resize = [T.Resize((size, size), interpolation=interpolation, antialias=True)]
    return T.Compose([
        *_as_tensor(size),
        *([RandomMirrorPad(mirror_pad)] if mirror_pad else []),
        *resize,
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(pre.mean, pre.std),
    ])
