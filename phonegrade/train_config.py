"""What one training run needs (`TrainConfig`), and recipe files of its options.

Each field is also an option of `phonegrade train` and `phonegrade crossval` and a key of a recipe file
(`--config`): its default, help and choices are written here once, and `phonegrade.commands` derives the command
line from them.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import yaml

from .data import extra_training_samples
from .errors import ConfigError
from .hub import display_name
from .labels import TASK_LABELS
from .models import ARCHS, check_arch, default_preprocessing, has_pretrained_backbone
from .models.prior import FORMER_PHONE_CLASSES, PHONE_CLASSES, check_phone_classes
from .transforms import AUGMENTATIONS, Preprocessing


def option(default=None, help: str | None = None, *, factory=None, single_run: bool = False, **argparse_settings):
    """A TrainConfig field and how the command line offers it: `help`, `single_run` (an option of one run, not of
    cross-validation, which makes its own splits and outputs) and argparse settings (`choices`, `metavar`,
    `required`, `crossval_default`, `crossval_help`: what cross-validation shows instead)."""
    metadata = {"help": help, "single_run": single_run, **argparse_settings}
    if argparse_settings.get("required"):
        return field(metadata=metadata)
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Everything one training run needs. Options of `phonegrade train` and keys of a recipe file (`--config`)
    have these names (dashes or underscores)."""

    task: str = option(help="which classifier to train", required=True, choices=tuple(sorted(TASK_LABELS)))
    data: str | list[str] = option(
        help="imagefolder (with or without train/ and val/), `datasets` folder saved with save_to_disk, or a Hub "
             "dataset id; several are combined (each may lack classes, and DIR=LABEL takes every image under the "
             "folder DIR as LABEL)", required=True, metavar="DATA")
    output_dir: str = option(help="folder that becomes the model repo", required=True,
                             crossval_help="folder for the folds' model folders and crossval.json")
    arch: str = option("mobilenet_v2", f"model architecture: {', '.join(ARCHS)}, or timm:<name> for any "
                                       "convolutional timm model (e.g. timm:convnext_tiny; its pretrained weights "
                                       "come from the Hugging Face Hub)", metavar="ARCH")
    weights: str | None = option(help="initial backbone weights: none, imagenet, or a path to a torchvision .pth / "
                                      ".safetensors state dict (default: imagenet where the arch has them, else "
                                      "none)")
    extra_train: list[str] = option(
        help="more labelled images (same kinds of source as --data; classes may be missing) added to the training "
             "images only, never validated on; DATA=LABEL takes every image under the folder DATA as LABEL, e.g. a "
             "scratch dataset's photos as extra side fronts", factory=list, metavar="DATA[=LABEL]")
    init_from: str | None = option(help="start from a trained phonegrade model (folder or Hub id) of the same arch "
                                        "and task, e.g. one pre-trained on `phonegrade synth` renders, instead of "
                                        "--weights", metavar="MODEL")
    trainable_blocks: int | None = option(help="train only the top K blocks of the backbone (default: per-arch with "
                                               "pretrained weights, all blocks from scratch)")
    phone_prior: float | None = option(
        help="side task, EfficientNet-Lite with every block frozen (--trainable-blocks 0): at prediction, raise "
             "`none` by log(THRESHOLD / p) when ImageNet's classifier gives the phone-like classes a probability p "
             "below THRESHOLD (docs/models.md)", metavar="THRESHOLD")
    phone_classes: list[int] = option(
        help="with --phone-prior: the ImageNet class indices counted as a phone (default: cellular telephone 487, "
             "iPod 605)", factory=lambda: list(PHONE_CLASSES), metavar="CLASS")
    clean_bias: float = option(
        0.0, "scratch task: after training, raise `no_scratch`'s logit by B (folded into the final layer), so that a "
             "photo is graded damaged only when the trained head finds damage e^B times likelier than clean: fewer "
             "clean phones graded damaged, more damage missed (docs/models.md)", metavar="B")
    unfreeze_at: int | None = option(help="epoch (1-based) from which every block trains, at --backbone-lr-scale × lr")
    backbone_lr_scale: float = option(0.1, "learning-rate factor for frozen-then-unfrozen backbone blocks")
    epochs: int = option(30, "training epochs (fewer with early stopping)")
    batch_size: int = option(32, "images per training step")
    lr: float = option(1e-3, "AdamW learning rate")
    weight_decay: float = option(1e-4, "AdamW weight decay")
    image_size: int | None = option(help="input side in pixels (default: what the arch's ImageNet weights were made "
                                         "for, e.g. 224 for efficientnet_lite0, 260 for efficientnet_lite2)")
    crop_pct: float = option(1.0, "1.0: the whole photo, squashed to a square; below 1: the centre after resizing "
                                  "the short side to image-size / crop-pct (ImageNet's evaluation protocol uses "
                                  "0.875)")
    gamma: float = option(2.0, "focal-loss gamma (0 = cross-entropy)")
    class_weights: str = option("none", "auto: weight classes inversely to their training frequency",
                                choices=("none", "auto"))
    scheduler: str = option("plateau", "learning-rate schedule: plateau (lower it when the validation loss stalls), "
                                       "cosine (to zero over the epochs) or none",
                            choices=("plateau", "cosine", "none"))
    patience: int = option(7, "stop after this many epochs without a lower validation loss (0: never stop early)")
    val_fraction: float | None = option(0.2, "validation share when the data has no validation split (stratified)",
                                        single_run=True)
    keep: str = option("best", "weights the model folder keeps: best (lowest validation loss) or last (final epoch)",
                       choices=("best", "last"), crossval_default="last",
                       crossval_help="weights the model folder keeps: best (lowest validation loss) or last (final "
                                     "epoch); cross-validation keeps the last, as picking the best by the held-out "
                                     "fold would flatter its score")
    seed: int = option(0, "seeds the split, the initial head and the augmentation")
    workers: int | None = option(help="DataLoader worker processes (default: none when training on the CPU, whose "
                                      "every core the network uses; else min(4, CPU cores))")
    augment: str = option("standard", "augmentation preset: standard (crop, flip, rotation, colour) or strong "
                                      "(smaller crops, TrivialAugment, random erasing) for small sets trained from "
                                      "scratch", choices=AUGMENTATIONS)
    mixup_alpha: float = option(0.0, "MixUp: blend pairs of training images and their labels, Beta(alpha, alpha) "
                                     "mixing (0 = off); with --cutmix-alpha each batch gets one of the two")
    cutmix_alpha: float = option(0.0, "CutMix: paste a box of one training image into another, labels mixed by area "
                                      "(0 = off)")
    ema_decay: float = option(0.0, "keep an exponential moving average of the weights (decay per optimizer step, "
                                   "e.g. 0.98; 0 = off); validation and the saved model use the averaged weights")
    mirror_pad: float = option(
        0.0, "with probability P, shrink a training photo inside its own mirrored edges, so that such padding (some "
             "dataset exports add it to one class's photos) is no sign of a class; with --no-augment, a padded copy "
             "of each training photo joins it with probability P (fixed for the run, so --cache-features still "
             "works)", metavar="P")
    no_augment: bool = option(False, "train on un-augmented images (the evaluation transform: resize and normalise "
                                     "only)")
    cache_features: bool = option(False, "run the frozen backbone blocks once over the (un-augmented) images and "
                                         "train the rest on their output, held in memory; needs --no-augment and "
                                         "frozen blocks, and no --unfreeze-at or WearNet side trunk")
    photo_cache_mb: int = option(2048, "keep up to MB of decoded photos in memory across epochs instead of decoding "
                                       "their files every epoch (0: off); training sees the same pixels either way",
                                 metavar="MB")
    # None: Accelerate decides (accelerate launch --mixed_precision, its config)
    mixed_precision: str | None = option(help="default: what `accelerate launch --mixed_precision` or `accelerate "
                                              "config` set, else no", choices=("no", "fp16", "bf16"))
    data_description: str | None = option(help="what the training data is, in words, for the model card and the "
                                               "demo page", metavar="TEXT")
    data_terms: str | None = option(help="the training photos' terms of use, in words (licences, attribution, "
                                         "allowed use), for the model card and its LICENSE file: a model is bound "
                                         "by its data's terms too", metavar="TEXT")
    card_note: str | None = option(help="a paragraph for the model card's training section, e.g. how this run was "
                                        "chosen", metavar="TEXT")
    no_progress: bool = option(False, "no progress bars (log lines only)")
    resume: bool = option(False, "continue from OUTPUT_DIR/checkpoints/last if a previous run left one",
                          single_run=True)
    corrections: str | None = option(
        help="merge users' corrections (a corrections folder or Hub dataset id) into training (in cross-validation, "
             "every fold's): those `phonegrade corrections triage` or a reviewer accepted, one per near-duplicate "
             "photo", metavar="REPO_OR_DIR")
    corrections_all: bool = option(False, "use every correction with a photo, triaged or not (one per photo: the "
                                          "newest)")
    corrections_in_val: bool = option(False, "also hold out a stratified 20%% of the corrections for validation "
                                             "(default: corrections only train, and validation stays the base "
                                             "data's)", single_run=True)
    crossval_summary: str | list[str] | None = option(
        help="crossval.json of `phonegrade crossval` with this recipe (one stratified, one leave-one-group-out, or "
             "both): their numbers go into config.json and the model card", single_run=True, metavar="CROSSVAL_JSON")
    calibrate_from: str | None = option(
        help="a `phonegrade crossval` output folder of this recipe (best: leave-one-group-out): divide the final "
             "logits by the temperature that fits its out-of-fold probabilities best, so that the model's "
             "probabilities say how often it is right (docs/models.md)", single_run=True, metavar="CROSSVAL_DIR")
    push_to_hub: str | None = option(help="upload the finished model folder to this repo", single_run=True,
                                     metavar="REPO_ID")
    private: bool = option(False, "create the Hub repo as private", single_run=True)
    force: bool = option(False, "with --push-to-hub: replace the model the repo already holds (without it such a "
                                "push is refused before training starts: `phonegrade promote` compares the two "
                                "first)", single_run=True)

    # What config.json records of a run (where data and output live is recorded as names elsewhere, or not at all).
    RECORDED = ("task", "arch", "epochs", "batch_size", "lr", "weight_decay", "image_size", "crop_pct", "gamma",
                "class_weights", "scheduler", "patience", "val_fraction", "seed", "unfreeze_at", "backbone_lr_scale",
                "mixed_precision", "augment", "no_augment", "cache_features", "keep", "mixup_alpha", "cutmix_alpha",
                "ema_decay", "mirror_pad", "phone_prior", "phone_classes", "clean_bias")

    def __post_init__(self):
        # Options from a recipe file skip argparse's checks: the same ones, here.
        check_arch(self.arch)
        for spec in dataclasses.fields(self):
            allowed = spec.metadata.get("choices")
            value = getattr(self, spec.name)
            if allowed and value not in allowed and not (value is None and spec.default is None):
                raise ConfigError(f"{spec.name} must be one of {', '.join(allowed)}, got {value!r}")
        try:
            check_phone_classes(self.phone_classes)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if isinstance(self.clean_bias, bool) or not isinstance(self.clean_bias, (int, float)) \
                or not math.isfinite(self.clean_bias):
            raise ConfigError(f"clean_bias must be a finite number, got {self.clean_bias!r}")
        if self.clean_bias and self.task != "scratch":
            raise ConfigError("--clean-bias raises `no_scratch`: scratch task only")

    def resolved_weights(self) -> str:
        """The starting weights actually used: --init-from replaces them; by default ImageNet where the arch has
        them."""
        if self.init_from:
            if self.weights not in (None, "none"):
                raise ConfigError("--init-from and --weights both set the starting weights: give one of them")
            return "none"
        if self.weights is None:
            return "imagenet" if has_pretrained_backbone(self.arch) else "none"
        return self.weights

    def preprocessing(self) -> Preprocessing:
        """The arch's preprocessing, with --image-size and --crop-pct where given."""
        pre = default_preprocessing(self.arch)
        return dataclasses.replace(pre, image_size=self.image_size or pre.image_size, crop_pct=self.crop_pct)

    def differences(self, training: dict, extra_train: list[dict]) -> list[str]:
        """The options in which a model folder's recorded run (config.json `training` and `data.extra_train`)
        differs from this config: empty when this config would make the same run again. Options an earlier
        version did not record yet had their default then."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        defaults |= {"mixed_precision": "no", "phone_classes": list(FORMER_PHONE_CLASSES)}  # what runs did before
        differ = []
        for key in self.RECORDED:
            value = getattr(self, key)
            if value is None and key == "mixed_precision":
                continue  # left to Accelerate: the run records what it decided
            if key == "phone_classes" and self.phone_prior is None:
                continue  # counted by the prior only
            recorded = training.get(key, defaults[key])
            if key == "class_weights":  # recorded as the weights themselves, or none
                recorded = "auto" if isinstance(recorded, list) else "none" if recorded in (None, "none") else recorded
            if recorded != value:
                differ.append(key)
        if training.get("weights") != self.resolved_weights():
            differ.append("weights")
        if self.trainable_blocks is not None and training.get("trainable_blocks") != self.trainable_blocks:
            differ.append("trainable_blocks")
        if (training.get("init_from") or None) != (display_name(self.init_from) if self.init_from else None):
            differ.append("init_from")
        wanted = [(extra_training_samples(source, self.task)[1]) for source in self.extra_train]
        if [e.get("source") for e in extra_train] != wanted:
            differ.append("extra_train")
        return differ

    @classmethod
    def from_options(cls, options: dict) -> TrainConfig:
        """A config from parsed options (`vars(args)`), ignoring those that are not its fields."""
        return cls(**{f.name: options[f.name] for f in dataclasses.fields(cls) if f.name in options})


def recipe_text(name: str | os.PathLike) -> str:
    """A recipe file, or by bare name one installed with phonegrade (`side-default` is recipes/side-default.yaml)."""
    path = Path(name)
    packaged = files("phonegrade.recipes") / f"{name}.yaml"
    if not path.exists() and path.suffix == "" and packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return path.read_text(encoding="utf-8")


def load_recipe(path: str | os.PathLike) -> dict:
    """A recipe file's options (YAML or JSON), keyed by TrainConfig field names; unknown keys are an error."""
    try:
        recipe = yaml.safe_load(recipe_text(path))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--config {path}: cannot read the recipe ({err.__class__.__name__}: {err})") from err
    if not isinstance(recipe, dict):
        raise ConfigError(f"--config {path}: a recipe is a mapping of option names to values")
    options = {str(key).replace("-", "_"): value for key, value in recipe.items()}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"--config {path}: unknown option(s) {', '.join(unknown)}")
    return options
