"""Train a phonegrade classifier.

    accelerate launch phonegrade/train.py --task side --arch mobilenet_v2 --data DIR --output-dir OUT
    python phonegrade/train.py ...            # same, one process
    phonegrade train ...                      # same, through the CLI

The loop is plain PyTorch with Accelerate: prepare, backward, gather_for_metrics, save_state. OUT becomes a
Hub-style model folder (model.safetensors, config.json, README.md card, metrics.json, confusion_matrix.png).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file (accelerate launch phonegrade/train.py): import the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phonegrade.corrections import load_correction_rows, merge_corrections
from phonegrade.crossval import card_numbers
from phonegrade.data import AUGMENTATIONS, PhotoDataset, Preprocessing, display_name, resolve_dataset_revision, Splits, eval_transform, label_counts, load_all_samples, \
    load_splits, train_transform
from phonegrade.evaluate import compute_metrics, format_report, write_metrics
from phonegrade.hub import PhoneGradeClassifier, push_model_folder, write_model_card
from phonegrade.labels import TASK_LABELS
from phonegrade.losses import balanced_class_weights, focal_loss
from phonegrade.models import ARCHS, TrainableTop, check_arch, count_parameters, create_model, default_preprocessing, \
    describe_weights, has_pretrained_backbone, imagenet_hub_id
from phonegrade.utils import accelerate_on_cpu

CHECKPOINT_DIR = "checkpoints"
# Arguments recorded in config.json (paths to data and output are recorded elsewhere or not at all).
TRAINING_KEYS = ("task", "arch", "epochs", "batch_size", "lr", "weight_decay", "image_size", "crop_pct", "gamma",
                 "class_weights", "scheduler", "patience", "val_fraction", "seed", "unfreeze_at",
                 "backbone_lr_scale", "mixed_precision", "augment", "no_augment", "cache_features", "init_from", "keep",
                 "mixup_alpha", "cutmix_alpha", "ema_decay")
BEST_WEIGHTS = "best.safetensors"
AVERAGE_WEIGHTS = "weight_average.safetensors"  # in a resume checkpoint, beside Accelerate's files


def add_arguments(parser: argparse.ArgumentParser, single_run: bool = True) -> None:
    """Training options; single_run=False leaves out those that concern one run's data split and output
    (cross-validation makes its own splits)."""
    parser.add_argument("--task", required=True, choices=sorted(TASK_LABELS), help="which classifier to train")
    parser.add_argument("--arch", default="mobilenet_v2", type=check_arch, metavar="ARCH",
                        help=f"model architecture: {', '.join(ARCHS)}, or timm:<name> for any convolutional timm "
                             f"model (e.g. timm:convnext_tiny; its pretrained weights come from the Hugging Face Hub)")
    parser.add_argument("--data", required=True,
                        help="imagefolder (with or without train/ and val/), `datasets` folder saved with "
                             "save_to_disk, or a Hub dataset id")
    parser.add_argument("--output-dir", required=True,
                        help="folder that becomes the model repo" if single_run
                        else "folder for the folds' model folders and crossval.json")
    parser.add_argument("--weights", default=None,
                        help="initial backbone weights: none, imagenet, or a path to a torchvision .pth / "
                             ".safetensors state dict (default: imagenet, or none for wearnet)")
    parser.add_argument("--extra-train", metavar="DATA", nargs="+", default=[],
                        help="more labelled images (same kinds of source as --data) added to the training images "
                             "only, never validated on: e.g. `phonegrade synth` renders mixed into every epoch "
                             "of a fine-tune on real photos")
    parser.add_argument("--init-from", metavar="MODEL",
                        help="start from a trained phonegrade model (folder or Hub id) of the same arch and "
                             "task, e.g. one pre-trained on `phonegrade synth` renders, instead of --weights")
    parser.add_argument("--trainable-blocks", type=int, default=None,
                        help="train only the top K blocks of the backbone (default: per-arch with pretrained "
                             "weights, all blocks from scratch)")
    parser.add_argument("--unfreeze-at", type=int, default=None,
                        help="epoch (1-based) from which every block trains, at --backbone-lr-scale × lr")
    parser.add_argument("--backbone-lr-scale", type=float, default=0.1,
                        help="learning-rate factor for frozen-then-unfrozen backbone blocks (default 0.1)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--image-size", type=int, default=None,
                        help="input side in pixels (default: what the arch's ImageNet weights were made for, e.g. "
                             "224 for efficientnet_lite0, 260 for efficientnet_lite2)")
    parser.add_argument("--crop-pct", type=float, default=1.0,
                        help="1.0: the whole photo, squashed to a square; below 1: the centre after resizing the "
                             "short side to image-size / crop-pct (ImageNet's evaluation protocol uses 0.875)")
    parser.add_argument("--gamma", type=float, default=2.0, help="focal-loss gamma (0 = cross-entropy)")
    parser.add_argument("--class-weights", choices=("none", "auto"), default="none",
                        help="auto: weight classes inversely to their training frequency")
    parser.add_argument("--scheduler", choices=("plateau", "cosine", "none"), default="plateau")
    parser.add_argument("--patience", type=int, default=7,
                        help="stop after this many epochs without a lower validation loss (0: never stop early)")
    if single_run:
        parser.add_argument("--val-fraction", type=float, default=0.2,
                            help="validation share when the data has no validation split (stratified)")
    parser.add_argument("--keep", choices=("best", "last"), default="best" if single_run else "last",
                        help="weights the model folder keeps: best (lowest validation loss) or last (final epoch)"
                             + ("" if single_run else "; cross-validation keeps the last, as picking the best "
                                                      "by the held-out fold would flatter its score"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="DataLoader worker processes")
    parser.add_argument("--augment", choices=AUGMENTATIONS, default="standard",
                        help="augmentation preset: standard (crop, flip, rotation, colour) or strong (smaller crops, "
                             "TrivialAugment, random erasing) for small sets trained from scratch")
    parser.add_argument("--mixup-alpha", type=float, default=0.0,
                        help="MixUp: blend pairs of training images and their labels, Beta(alpha, alpha) "
                             "mixing (0 = off); with --cutmix-alpha each batch gets one of the two")
    parser.add_argument("--cutmix-alpha", type=float, default=0.0,
                        help="CutMix: paste a box of one training image into another, labels mixed by area (0 = off)")
    parser.add_argument("--ema-decay", type=float, default=0.0,
                        help="keep an exponential moving average of the weights (decay per optimizer step, e.g. "
                             "0.98; 0 = off); validation and the saved model use the averaged weights")
    parser.add_argument("--no-augment", action="store_true",
                        help="train on un-augmented images (the evaluation transform: resize and normalise only)")
    parser.add_argument("--cache-features", action="store_true",
                        help="run the frozen backbone blocks once over the (un-augmented) images and train the rest on "
                             "their output, held in memory; needs --no-augment and frozen blocks, and no --unfreeze-at "
                             "or WearNet side trunk")
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--data-description", metavar="TEXT",
                        help="what the training data is, for the model card and the demo page")
    parser.add_argument("--card-note", metavar="TEXT",
                        help="a paragraph for the model card's training section, e.g. how this run was chosen")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (log lines only)")
    if not single_run:
        return
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUTPUT_DIR/checkpoints/last if a previous run left one")
    parser.add_argument("--corrections", metavar="REPO_OR_DIR",
                        help="merge users' corrections (a corrections folder or Hub dataset id) into training")
    parser.add_argument("--corrections-in-val", action="store_true",
                        help="also hold out a stratified 20%% of the corrections for validation (default: "
                             "corrections only train, and validation stays the base data's)")
    parser.add_argument("--crossval-summary", metavar="CROSSVAL_JSON",
                        help="crossval.json of `phonegrade crossval` with this recipe: its numbers go into "
                             "config.json and the model card")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the finished model folder to this repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="phonegrade train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser)
    return parser.parse_args(argv)


def resolve_weights(args: argparse.Namespace) -> str:
    if args.init_from:
        if args.weights not in (None, "none"):
            raise ValueError("--init-from and --weights both set the starting weights: give one of them")
        return "none"
    if args.weights is None:
        return "imagenet" if has_pretrained_backbone(args.arch) else "none"
    return args.weights


def preprocessing_for(args: argparse.Namespace) -> Preprocessing:
    """The arch's preprocessing, with --image-size and --crop-pct where given."""
    pre = default_preprocessing(args.arch)
    return dataclasses.replace(pre, image_size=args.image_size or pre.image_size, crop_pct=args.crop_pct)


def build_optimizer(model, args) -> torch.optim.Optimizer:
    """Head and trainable blocks at lr; frozen blocks in their own group at a lower lr, for --unfreeze-at."""
    frozen = {id(p) for block in model.blocks[: model.frozen_blocks] for p in block.parameters()}
    params = list(model.parameters())
    groups = [{"params": [p for p in params if id(p) not in frozen], "lr": args.lr}]
    if frozen:
        groups.append({"params": [p for p in params if id(p) in frozen], "lr": args.lr * args.backbone_lr_scale})
    return torch.optim.AdamW(groups, weight_decay=args.weight_decay)


def check_feature_caching(net, args) -> None:
    """--cache-features is right only when the frozen blocks and their input stay the same every epoch."""
    problems = []
    if not args.no_augment:
        problems.append("augmentation shows the frozen blocks a different image every epoch: add --no-augment")
    if net.frozen_blocks == 0:
        problems.append("no backbone block is frozen (with --weights none all train; see --trainable-blocks)")
    if args.unfreeze_at is not None:
        problems.append("--unfreeze-at makes the frozen blocks train later")
    if net.side_blocks is not None:
        problems.append(f"the WearNet side trunk of {args.arch} trains on the images themselves")
    if args.mixup_alpha or args.cutmix_alpha:
        problems.append("--mixup-alpha and --cutmix-alpha mix the images themselves")
    if problems:
        raise ValueError("--cache-features cannot be used here: " + "; ".join(problems))


def cache_frozen_features(net, dataset, accelerator, args, progress) -> torch.utils.data.TensorDataset:
    """(frozen blocks' output, label) for every image of `dataset`; each process computes a share and all
    of them get the whole set."""
    loader = accelerator.prepare_data_loader(
        torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers))
    net.to(accelerator.device).eval()
    features, labels = [], []
    with torch.no_grad():
        for images, targets in progress(loader, desc="cache features"):
            frozen = net.frozen_features(images.contiguous(memory_format=torch.channels_last))
            batch_features, batch_labels = accelerator.gather_for_metrics((frozen, targets))
            features.append(batch_features.cpu())
            labels.append(batch_labels.cpu())
    return torch.utils.data.TensorDataset(torch.cat(features), torch.cat(labels))


def build_batch_mixing(args, num_classes: int):
    """MixUp and/or CutMix over a training batch, one of them per batch, as torchvision's classification
    recipe applies them; None when both are off. Targets become soft (batch, classes) tensors."""
    from torchvision.transforms import v2 as T

    mixes = [mix(alpha=alpha, num_classes=num_classes)
             for mix, alpha in ((T.MixUp, args.mixup_alpha), (T.CutMix, args.cutmix_alpha)) if alpha > 0]
    return T.RandomChoice(mixes) if mixes else None


def build_weight_average(model, args):
    """An exponential moving average of `model`'s weights and BatchNorm statistics, or None (--ema-decay 0)."""
    if not args.ema_decay:
        return None
    if not 0 < args.ema_decay < 1:
        raise ValueError(f"--ema-decay must lie between 0 and 1, got {args.ema_decay}")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)


def build_scheduler(optimizer, args):
    if args.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    if args.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    return None


def train_one_epoch(model, loader, optimizer, accelerator, loss_weights, args, progress,
                    batch_mixing=None, weight_average=None) -> tuple[float, float, int]:
    """Mean loss and accuracy over the epoch's training images, and how many images all processes trained on.
    With batch mixing, accuracy counts the label that dominates each mixed image."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for images, targets in progress(loader, desc="train"):
        if batch_mixing is not None:
            images, targets = batch_mixing(images, targets)
        logits = model(images.contiguous(memory_format=torch.channels_last))
        loss = focal_loss(logits, targets, args.gamma, loss_weights)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        if weight_average is not None:
            weight_average.update_parameters(accelerator.unwrap_model(model))
        total_loss += loss.item() * len(targets)
        hard_targets = targets.argmax(dim=1) if targets.ndim == 2 else targets
        correct += (logits.argmax(dim=1) == hard_targets).sum().item()
        seen += len(targets)
    # Each process saw its own shard: combine them.
    totals = accelerator.reduce(torch.tensor([total_loss, correct, seen], device=accelerator.device), "sum")
    return (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item(), int(totals[2].item())


@torch.no_grad()
def validate(model, loader, accelerator, loss_weights, args, progress) -> tuple[float, list[int], list[int]]:
    model.eval()
    losses, y_true, y_pred = [], [], []
    for images, targets in progress(loader, desc="val"):
        logits = model(images.contiguous(memory_format=torch.channels_last))
        # gather_for_metrics drops the samples padded in to even out the last batch across processes.
        logits, targets = accelerator.gather_for_metrics((logits, targets))
        losses.append(focal_loss(logits, targets, args.gamma, loss_weights) * len(targets))
        y_true += targets.tolist()
        y_pred += logits.argmax(dim=1).tolist()
    return (torch.stack(losses).sum() / len(y_true)).item(), y_true, y_pred


def load_initial_model(net, source: str, task: str, arch: str) -> None:
    """Copy a trained phonegrade model's weights into `net` (a fresh model of the same arch and task)."""
    start = PhoneGradeClassifier.from_pretrained(source)
    if (start.task, start.arch) != (task, arch):
        raise ValueError(f"--init-from {source} is a {start.arch} {start.task} model; this run trains a "
                         f"{arch} {task} model")
    if start.members > 1:
        raise ValueError(f"--init-from {source} is an ensemble of {start.members} models; fine-tune from one of "
                         f"its members (the single models it was built from) instead")
    net.load_state_dict(start.net.state_dict())


def read_crossval_summary(path: str, task: str) -> dict:
    """The numbers of a `phonegrade crossval` summary that a model card reports."""
    try:
        summary = json.loads(Path(path).read_text())
        kept = card_numbers(summary)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"--crossval-summary {path}: not a crossval.json written by `phonegrade crossval` "
                         f"({err.__class__.__name__}: {err})") from err
    if summary.get("task") != task:
        raise ValueError(f"--crossval-summary {path} is for the {summary.get('task')} task, not {task}")
    return kept


def base_model(args: argparse.Namespace, weights: str) -> str | None:
    """The Hub model this one was fine-tuned from, for the card's `base_model`: --init-from when it is a Hub id,
    else the Hub copy of the ImageNet weights a timm backbone started from."""
    if args.init_from:
        return args.init_from if not Path(args.init_from).exists() else None
    return imagenet_hub_id(args.arch) if weights == "imagenet" else None


def _save_weights(net, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(path))


def main(argv: list[str] | argparse.Namespace | None = None, splits: Splits | None = None,
         crossval_fold: dict | None = None) -> Path:
    """Train, evaluate and write the model folder. `splits` replaces loading --data (cross-validation folds;
    `crossval_fold` is then the fold's record, `data.crossval_fold_record`)."""
    args = parse_args(argv) if not isinstance(argv, argparse.Namespace) else argv
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from safetensors.torch import load_file
    from tqdm.auto import tqdm

    out = Path(args.output_dir)
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=accelerate_on_cpu())
    weights = resolve_weights(args)

    def progress(iterable, desc):
        return tqdm(iterable, desc=desc, leave=False, disable=args.no_progress or not accelerator.is_main_process)

    set_seed(args.seed)
    if splits is None:
        splits = load_splits(args.data, args.task, args.val_fraction, args.seed)
    corrections = None
    if args.corrections:
        # A Hub repo is read at the commit its main branch points at now, and that commit is recorded.
        revision = None if Path(args.corrections).is_dir() else resolve_dataset_revision(args.corrections)
        rows = load_correction_rows(args.corrections, revision=revision)
        corrections = {"source": display_name(args.corrections), "revision": revision,
                       **merge_corrections(splits, rows, args.task, args.corrections_in_val, args.seed)}
        accelerator.print(f"corrections {args.corrections}: {corrections['corrections']} {args.task} corrections; "
                          f"{corrections['added_train']} added to train, {corrections['added_val']} to val, "
                          f"{corrections['relabelled']} relabelled, {corrections['skipped_in_val']} left out "
                          f"(same photo as a validation image)")
    extra_train = []
    for source in args.extra_train:
        extra = load_all_samples(source, args.task)
        splits.train = splits.train + extra  # a new list: cross-validation folds share theirs
        extra_train.append({"source": display_name(source), "images": len(extra)})
        accelerator.print(f"extra training data {source}: {len(extra)} images")
    crossval = read_crossval_summary(args.crossval_summary, args.task) if args.crossval_summary else None
    counts = label_counts(splits.train, len(splits.labels))
    accelerator.print(f"data {splits.source}: {len(splits.train)} train / {len(splits.val)} val images; "
                      f"train per class {dict(zip(splits.labels, counts, strict=True))}"
                      + (f"; skipped {splits.skipped} unreadable files" if splits.skipped else ""))

    net = create_model(args.arch, len(splits.labels), weights=weights, trainable_blocks=args.trainable_blocks)
    if args.init_from:
        load_initial_model(net, args.init_from, args.task, args.arch)
    # Convolutions train faster in channels_last layout (oneDNN on CPUs, cuDNN on GPUs); batches are fed so too.
    net.to(memory_format=torch.channels_last)
    trainable_blocks = len(net.blocks) - net.frozen_blocks
    starting_point = f"from {args.init_from}" if args.init_from else f"weights {weights}"
    accelerator.print(f"model {args.arch} ({starting_point}): {count_parameters(net):,} parameters, "
                      f"{count_parameters(net, trainable_only=True):,} trainable "
                      f"({trainable_blocks}/{len(net.blocks)} backbone blocks); {accelerator.num_processes} "
                      f"process{'es' if accelerator.num_processes > 1 else ''} on {accelerator.device.type}")
    if args.cache_features:
        check_feature_caching(net, args)
    loss_weights = balanced_class_weights(counts) if args.class_weights == "auto" else None

    generator = torch.Generator().manual_seed(args.seed)
    pre = preprocessing_for(args)
    train_set = PhotoDataset(splits.train, eval_transform(pre) if args.no_augment
                             else train_transform(pre, augment=args.augment), pre.image_size)
    val_set = PhotoDataset(splits.val, eval_transform(pre), pre.image_size)
    model, train_workers = net, args.workers
    if args.cache_features:
        # The frozen blocks see every image once; each epoch then trains only the blocks above them, on
        # features held in memory (nothing left to load in worker processes).
        model, train_workers = TrainableTop(net), 0
        started = time.time()
        train_set = cache_frozen_features(net, train_set, accelerator, args, progress)
        val_features = cache_frozen_features(net, val_set, accelerator, args, progress)
        accelerator.print(f"cached the frozen blocks' output for {len(train_set)} train and {len(val_features)} val "
                          f"images in {time.time() - started:.1f}s")
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, num_workers=train_workers,
        drop_last=len(splits.train) > args.batch_size, generator=generator)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=args.batch_size, num_workers=args.workers,
                                             persistent_workers=args.workers > 0)
    optimizer = build_optimizer(net, args)
    scheduler = build_scheduler(optimizer, args)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    # Validation after each epoch feeds the model what it trains on; the final evaluation always sees images.
    epoch_val_loader = accelerator.prepare(torch.utils.data.DataLoader(val_features, batch_size=args.batch_size)) \
        if args.cache_features else val_loader
    if scheduler is not None:
        # Stepped once per epoch on every process, so it is checkpointed but not wrapped by prepare.
        accelerator.register_for_checkpointing(scheduler)
    batch_mixing = build_batch_mixing(args, len(splits.labels))
    # The average follows what trains (the whole net, or its top with --cache-features); it is validated and
    # kept in place of the raw weights.
    weight_average = build_weight_average(accelerator.unwrap_model(model), args)
    if weight_average is not None:
        averaged = weight_average.module
        kept_net, eval_model = (averaged.net if isinstance(averaged, TrainableTop) else averaged), averaged
    else:
        kept_net, eval_model = net, model

    checkpoints = out / CHECKPOINT_DIR
    state = {"epoch": 0, "best_val_loss": math.inf, "best_epoch": 0, "epochs_without_improvement": 0,
             "history": []}
    if args.resume and (checkpoints / "last" / "trainer_state.json").is_file():
        accelerator.load_state(str(checkpoints / "last"))
        state = json.loads((checkpoints / "last" / "trainer_state.json").read_text())
        if weight_average is not None:
            weight_average.load_state_dict(load_file(str(checkpoints / "last" / AVERAGE_WEIGHTS)))
        accelerator.print(f"resumed from {checkpoints / 'last'} after epoch {state['epoch']}")
    elif args.resume:
        accelerator.print(f"--resume: no checkpoint in {checkpoints / 'last'}, starting fresh")
    elif accelerator.is_main_process and (out / "model.safetensors").exists():
        accelerator.print(f"note: {out} already holds a model; it will be replaced")
    if accelerator.is_main_process:
        checkpoints.mkdir(parents=True, exist_ok=True)

    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        started = time.time()
        # Shuffling, augmentation and dropout depend only on (seed, epoch), so a resumed run repeats them.
        set_seed(args.seed + epoch)
        generator.manual_seed(args.seed + epoch)
        if args.unfreeze_at is not None and epoch >= args.unfreeze_at and net.frozen_blocks:
            net.freeze(len(net.blocks))
            accelerator.print(f"epoch {epoch}: all backbone blocks now train")
        train_loss, train_acc, train_images = train_one_epoch(model, train_loader, optimizer, accelerator,
                                                              loss_weights, args, progress, batch_mixing,
                                                              weight_average)
        val_loss, y_true, y_pred = validate(eval_model, epoch_val_loader, accelerator, loss_weights, args, progress)
        val_acc = sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)
        lr = optimizer.param_groups[0]["lr"]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_loss)
        elif scheduler is not None:
            scheduler.step()

        improved = val_loss < state["best_val_loss"]
        if improved:
            state.update(best_val_loss=val_loss, best_epoch=epoch, epochs_without_improvement=0)
        else:
            state["epochs_without_improvement"] += 1
        record = {"epoch": epoch, "train_images": train_images, "train_loss": round(train_loss, 5),
                  "train_acc": round(train_acc, 4),
                  "val_loss": round(val_loss, 5), "val_acc": round(val_acc, 4), "lr": lr,
                  "seconds": round(time.time() - started, 2)}
        state["history"].append(record)
        state["epoch"] = epoch
        accelerator.print(f"epoch {epoch}/{args.epochs}  train loss {train_loss:.4f} acc {train_acc:.3f}  "
                          f"val loss {val_loss:.4f} acc {val_acc:.3f}  lr {lr:.2e}  {record['seconds']:.1f}s"
                          + ("  *best" if improved else ""))

        accelerator.wait_for_everyone()
        if accelerator.is_main_process and improved:
            _save_weights(kept_net, checkpoints / BEST_WEIGHTS)
        accelerator.save_state(str(checkpoints / "last"))
        if accelerator.is_main_process:
            (checkpoints / "last" / "trainer_state.json").write_text(json.dumps(state, indent=1))
            if weight_average is not None:
                _save_weights(weight_average, checkpoints / "last" / AVERAGE_WEIGHTS)
        if args.patience and state["epochs_without_improvement"] >= args.patience:
            accelerator.print(f"early stop: no better validation loss for {args.patience} epochs")
            break

    accelerator.wait_for_everyone()
    # Final evaluation with the kept weights, through the same class users load.
    training = {k: v for k, v in vars(args).items() if k in TRAINING_KEYS}
    config = {
        "library": "phonegrade", "task": args.task, "arch": args.arch, "labels": list(splits.labels),
        **pre.to_config(),
        "num_parameters": count_parameters(net),
        # Names, not local paths: config.json and the card travel to the Hub and to other machines.
        "dataset": display_name(splits.source), "dataset_revision": splits.revision,
        "dataset_split": (f"fold {crossval_fold['fold']} of {crossval_fold['folds']} (seed {crossval_fold['seed']})"
                          if crossval_fold else "validation"),
        "crossval_fold": crossval_fold,
        "data_description": args.data_description, "card_note": args.card_note,
        "class_counts": dict(zip(splits.labels, label_counts(splits.train + splits.val, len(splits.labels)),
                                 strict=True)),
        "n_train": len(splits.train),
        "corrections_used": (corrections["added_train"] + corrections["added_val"] + corrections["relabelled"])
        if corrections else 0,
        "corrections": corrections, "extra_train": extra_train, "crossval": crossval, "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "training": {**training, "init_from": display_name(args.init_from) if args.init_from else None,
                     "weights": weights, "weights_source": describe_weights(args.arch, weights),
                     "trainable_blocks": trainable_blocks,
                     "class_weights": [round(w, 4) for w in loss_weights.tolist()] if loss_weights is not None
                     else None},
    }
    classifier = PhoneGradeClassifier(config)
    classifier.net.load_state_dict(load_file(str(checkpoints / BEST_WEIGHTS)) if args.keep == "best"
                                   else kept_net.state_dict())
    classifier.to(accelerator.device).eval()
    y_true, y_pred = [], []
    with torch.no_grad():
        for images, targets in val_loader:
            logits, targets = accelerator.gather_for_metrics((classifier(images), targets))
            y_true += targets.tolist()
            y_pred += logits.argmax(dim=1).tolist()
    metrics = compute_metrics(y_true, y_pred, splits.labels, args.task, args.arch)
    config["metrics"] = {k: metrics[k] for k in ("accuracy", "macro_f1", "n_val")}

    if accelerator.is_main_process:
        classifier.config = config
        classifier.save_pretrained(out)
        write_metrics(metrics, out)
        write_model_card(out, config, metrics, base_model=base_model(args, weights))
        with open(out / "training_log.jsonl", "w") as log:
            log.writelines(json.dumps(r) + "\n" for r in state["history"])
        accelerator.print("\n" + format_report(metrics))
        kept = f"best epoch {state['best_epoch']}" if args.keep == "best" else \
            f"last epoch {state['epoch']}; best was {state['best_epoch']}"
        accelerator.print(f"\nmodel folder: {out}  ({kept})")
        if args.push_to_hub:
            url = push_model_folder(out, args.push_to_hub, private=args.private)
            accelerator.print(f"pushed to {url}")
    accelerator.end_training()
    return out


if __name__ == "__main__":
    from phonegrade.cli import main as cli_main

    sys.exit(cli_main(["train", *sys.argv[1:]]))  # the CLI turns bad input into one clear error line
