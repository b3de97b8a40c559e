"""Training a phonegrade classifier, in phases a reader can follow top to bottom:

    assemble_data → build_model → build_loaders → restore_or_start → fit → final_evaluation → write_folder

`train(TrainConfig(...))` runs them; `phonegrade train`, `accelerate launch phonegrade/train.py` and
`phonegrade crossval` (one run per fold, `dataclasses.replace` of one config) all call it. The loop is plain
PyTorch with Accelerate: prepare, backward, gather_for_metrics, save_state. The output folder becomes a Hub-style
model folder (model.safetensors, config.json, README.md card, metrics.json, confusion_matrix.png).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .calibration import apply_clean_bias, apply_temperature, calibration_report
from .classifier import PhoneGradeClassifier, save_weights
from .config import ModelConfig
from .corrections import load_correction_rows, merge_corrections
from .crossvalidation import GROUPED, card_numbers, read_crossval_run
from .data import PhotoDataset, Splits, extra_training_samples, label_counts, load_splits
from .errors import ConfigError
from .hub import check_may_push, display_name, push_model_folder, resolve_dataset_revision
from .labels import TASK_LABELS
from .losses import balanced_class_weights, focal_loss
from .metrics import compute_metrics, format_report
from .model_folder import write_model_folder
from .models import (
    TrainableTop,
    count_parameters,
    create_model,
    describe_weights,
    imagenet_hub_id,
)
from .train_config import TrainConfig
from .transforms import Preprocessing, eval_transform, train_transform
from .triage import read_decisions, select_corrections
from .utils import accelerate_on_cpu

CHECKPOINT_DIR = "checkpoints"
BEST_WEIGHTS = "best.safetensors"
AVERAGE_WEIGHTS = "weight_average.safetensors"  # in a resume checkpoint, beside Accelerate's files


# ---------------------------------------------------------------- phase 1: data

@dataclass
class TrainingData:
    splits: Splits
    train_counts: list[int]
    corrections: dict | None
    extra_train: list[dict]


def describe_selection(counts: dict[str, int], everything: bool) -> str:
    """Which corrections a run takes, and why the others are left out, in words for the log."""
    left_out = f"; {counts['without_photo']} without a photo cannot train" if counts["without_photo"] else ""
    if everything:
        return (f"--corrections-all: every correction with a photo, triaged or not ({counts['accepted']} accepted, "
                f"{counts['queued']} queued, {counts['rejected']} rejected, {counts['unreviewed']} not triaged)"
                + left_out)
    return (f"{counts['accepted']} accepted corrections; left out: {counts['queued']} queued for review, "
            f"{counts['rejected']} rejected, {counts['unreviewed']} not triaged (`phonegrade corrections triage` and "
            f"`review` decide; --corrections-all takes them all){left_out}")


def assemble_data(config: TrainConfig, accelerator, splits: Splits | None = None) -> TrainingData:
    """The run's training and validation samples: --data split (or the given `splits`), plus users'
    corrections and --extra-train images."""
    if splits is None:
        splits = load_splits(config.data, config.task, config.val_fraction, config.seed)
    corrections = None
    if config.corrections:
        # A Hub repo is read at the commit its main branch points at now, and that commit is recorded.
        revision = None if Path(config.corrections).is_dir() else resolve_dataset_revision(config.corrections)
        rows = load_correction_rows(config.corrections, revision=revision)
        chosen, counts = select_corrections(rows, read_decisions(config.corrections, revision), config.task,
                                            accepted_only=not config.corrections_all)
        corrections = {"source": display_name(config.corrections), "revision": revision,
                       "selection": "all" if config.corrections_all else "accepted", **counts,
                       **merge_corrections(splits, chosen, config.task, config.corrections_in_val, config.seed)}
        corrections["used"] = corrections["added_train"] + corrections["added_val"] + corrections["relabelled"]
        accelerator.print(f"corrections {config.corrections}: {describe_selection(counts, config.corrections_all)}")
        accelerator.print(f"corrections {config.corrections}: {corrections['corrections']} {config.task} corrections "
                          f"used; {corrections['added_train']} added to train, {corrections['added_val']} to val, "
                          f"{corrections['relabelled']} relabelled, {corrections['skipped_in_val']} left out "
                          f"(same photo as a validation image)")
    extra_train = []
    for source in config.extra_train:
        extra, name = extra_training_samples(source, config.task)
        splits.train = splits.train + extra  # a new list: cross-validation folds share theirs
        counts = dict(zip(splits.labels, label_counts(extra, len(splits.labels)), strict=True))
        extra_train.append({"source": name, "images": len(extra), "per_class": counts})
        accelerator.print(f"extra training data {source}: {len(extra)} images {counts}")
    counts = label_counts(splits.train, len(splits.labels))
    accelerator.print(f"data {splits.source}: {len(splits.train)} train / {len(splits.val)} val images; "
                      f"train per class {dict(zip(splits.labels, counts, strict=True))}"
                      + (f"; skipped {splits.skipped} unreadable files" if splits.skipped else ""))
    return TrainingData(splits, counts, corrections, extra_train)


# ---------------------------------------------------------------- phase 2: model

def load_initial_model(net, source: str, task: str, arch: str) -> None:
    """Copy a trained phonegrade model's weights into `net` (a fresh model of the same arch and task)."""
    start = PhoneGradeClassifier.from_pretrained(source)
    if (start.task, start.arch) != (task, arch):
        raise ConfigError(f"--init-from {source} is a {start.arch} {start.task} model; this run trains a "
                          f"{arch} {task} model")
    if start.members > 1:
        raise ConfigError(f"--init-from {source} is an ensemble of {start.members} models; fine-tune from one of "
                          f"its members (the single models it was built from) instead")
    net.load_state_dict(start.net.state_dict())


def check_feature_caching(net, config: TrainConfig) -> None:
    """--cache-features is right only when the frozen blocks and their input stay the same every epoch."""
    problems = []
    if not config.no_augment:
        problems.append("augmentation shows the frozen blocks a different image every epoch: add --no-augment")
    if net.frozen_blocks == 0:
        problems.append("no backbone block is frozen (with --weights none all train; see --trainable-blocks)")
    if config.unfreeze_at is not None:
        problems.append("--unfreeze-at makes the frozen blocks train later")
    if net.side_blocks is not None:
        problems.append(f"the WearNet side trunk of {config.arch} trains on the images themselves")
    if config.mixup_alpha or config.cutmix_alpha:
        problems.append("--mixup-alpha and --cutmix-alpha mix the images themselves")
    if problems:
        raise ConfigError("--cache-features cannot be used here: " + "; ".join(problems))


def build_model(config: TrainConfig, num_classes: int, accelerator):
    """The network, from its starting weights, with the blocks that do not train frozen."""
    weights = config.resolved_weights()
    if config.phone_prior is not None and (config.task != "side" or config.trainable_blocks != 0
                                           or config.unfreeze_at is not None):
        raise ConfigError("--phone-prior reads ImageNet's classifier over ImageNet's own features: it needs the side "
                          "task and --trainable-blocks 0 (and no --unfreeze-at)")
    net = create_model(config.arch, num_classes, weights=weights, trainable_blocks=config.trainable_blocks,
                       phone_prior=config.phone_prior, phone_classes=tuple(config.phone_classes),
                       none_index=TASK_LABELS[config.task].index("none") if config.task == "side" else 0)
    if config.init_from:
        load_initial_model(net, config.init_from, config.task, config.arch)
    # Convolutions train faster in channels_last layout (oneDNN on CPUs, cuDNN on GPUs); batches are fed so too.
    net.to(memory_format=torch.channels_last)
    starting_point = f"from {config.init_from}" if config.init_from else f"weights {weights}"
    accelerator.print(f"model {config.arch} ({starting_point}): {count_parameters(net):,} parameters, "
                      f"{count_parameters(net, trainable_only=True):,} trainable "
                      f"({len(net.blocks) - net.frozen_blocks}/{len(net.blocks)} backbone blocks); "
                      f"{accelerator.num_processes} process{'es' if accelerator.num_processes > 1 else ''} on "
                      f"{accelerator.device.type}")
    if config.cache_features:
        check_feature_caching(net, config)
    return net, weights


# ---------------------------------------------------------------- phase 3: loaders and optimisation

def loader_workers(config: TrainConfig, device: torch.device) -> int:
    """--workers, or the default: on a CPU, worker processes only take cores from the network (measured: an epoch
    of the side recipe took 15.3 s with two workers on two cores, 12.5 s with none and the photos held decoded)."""
    if config.workers is not None:
        return config.workers
    return 0 if device.type == "cpu" else min(4, os.cpu_count() or 1)


def cache_frozen_features(net, dataset, accelerator, config: TrainConfig, progress) -> torch.utils.data.TensorDataset:
    """(frozen blocks' output, label) for every image of `dataset`; each process computes a share and all
    of them get the whole set."""
    loader = accelerator.prepare_data_loader(
        torch.utils.data.DataLoader(dataset, batch_size=config.batch_size,
                                    num_workers=loader_workers(config, accelerator.device)))
    net.to(accelerator.device).eval()
    features, labels = [], []
    with torch.no_grad():
        for images, targets in progress(loader, desc="cache features"):
            frozen = net.frozen_features(images.contiguous(memory_format=torch.channels_last))
            batch_features, batch_labels = accelerator.gather_for_metrics((frozen, targets))
            features.append(batch_features.cpu())
            labels.append(batch_labels.cpu())
    return torch.utils.data.TensorDataset(torch.cat(features), torch.cat(labels))


def build_optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    """Head and trainable blocks at lr; frozen blocks in their own group at a lower lr, for --unfreeze-at."""
    frozen = {id(p) for block in model.blocks[: model.frozen_blocks] for p in block.parameters()}
    params = list(model.parameters())
    groups = [{"params": [p for p in params if id(p) not in frozen], "lr": config.lr}]
    if frozen:
        groups.append({"params": [p for p in params if id(p) in frozen], "lr": config.lr * config.backbone_lr_scale})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def build_scheduler(optimizer, config: TrainConfig):
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return None


def build_batch_mixing(config: TrainConfig, num_classes: int):
    """MixUp and/or CutMix over a training batch, one of them per batch, as torchvision's classification
    recipe applies them; None when both are off. Targets become soft (batch, classes) tensors."""
    from torchvision.transforms import v2 as T

    mixes = [mix(alpha=alpha, num_classes=num_classes)
             for mix, alpha in ((T.MixUp, config.mixup_alpha), (T.CutMix, config.cutmix_alpha)) if alpha > 0]
    return T.RandomChoice(mixes) if mixes else None


def build_weight_average(model, config: TrainConfig):
    """An exponential moving average of `model`'s weights and BatchNorm statistics, or None (--ema-decay 0)."""
    if not config.ema_decay:
        return None
    if not 0 < config.ema_decay < 1:
        raise ConfigError(f"--ema-decay must lie between 0 and 1, got {config.ema_decay}")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)


@dataclass
class Loop:
    """What the epochs run on, once Accelerate has prepared it."""

    model: torch.nn.Module  # the net, or its TrainableTop when features are cached
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader  # images: the final evaluation always sees them
    epoch_val_loader: torch.utils.data.DataLoader  # what the model trains on: images, or cached features
    generator: torch.Generator
    batch_mixing: object
    weight_average: object
    kept_net: torch.nn.Module  # the weights a model folder keeps: the net, or its weight average
    eval_model: torch.nn.Module


def build_loaders(config: TrainConfig, net, data: TrainingData, pre: Preprocessing, accelerator, progress) -> Loop:
    """Datasets, loaders, optimizer and scheduler, prepared by Accelerate (features cached first if asked)."""
    generator = torch.Generator().manual_seed(config.seed)
    if config.no_augment:
        train_set = PhotoDataset(data.splits.train, eval_transform(pre), pre.image_size)
        if config.mirror_pad:
            # Without augmentation, padding comes as extra copies: the photos stay as they are, and a padded copy
            # of each (a share `mirror_pad` of them) joins them, fixed for the run, so features can be cached.
            chosen = torch.rand(len(data.splits.train), generator=generator) < config.mirror_pad
            copies = PhotoDataset([s for s, c in zip(data.splits.train, chosen.tolist(), strict=True) if c],
                                  eval_transform(pre, mirror_pad=1.0), pre.image_size)
            train_set = torch.utils.data.ConcatDataset([train_set, copies])
    else:
        train_set = PhotoDataset(data.splits.train, train_transform(pre, augment=config.augment,
                                                                   mirror_pad=config.mirror_pad), pre.image_size)
    val_set = PhotoDataset(data.splits.val, eval_transform(pre), pre.image_size)
    workers = loader_workers(config, accelerator.device)
    model, train_workers, val_features = net, workers, None
    if config.photo_cache_mb > 0 and not config.cache_features:
        # Decoding a photo costs nearly a tenth of its training step on a CPU: each is decoded once instead.
        budget = config.photo_cache_mb
        train_parts = getattr(train_set, "datasets", [train_set])  # with padded copies, two sets of photos
        for dataset in (*train_parts, val_set):
            dataset.hold_in_memory(budget, progress)
            budget -= dataset.held_mb
        accelerator.print(f"holding {sum(len(d.decoded) for d in train_parts)}/{len(train_set)} train and "
                          f"{len(val_set.decoded)}/{len(val_set)} val photos decoded in memory")
    if config.cache_features:
        # The frozen blocks see every image once; each epoch then trains only the blocks above them, on
        # features held in memory (nothing left to load in worker processes).
        model, train_workers = TrainableTop(net), 0
        started = time.time()
        train_set = cache_frozen_features(net, train_set, accelerator, config, progress)
        val_features = cache_frozen_features(net, val_set, accelerator, config, progress)
        accelerator.print(f"cached the frozen blocks' output for {len(train_set)} train and {len(val_features)} val "
                          f"images in {time.time() - started:.1f}s")
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=config.batch_size, shuffle=True, num_workers=train_workers,
        drop_last=len(data.splits.train) > config.batch_size, generator=generator)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size, num_workers=workers,
                                             persistent_workers=workers > 0)
    optimizer = build_optimizer(net, config)
    scheduler = build_scheduler(optimizer, config)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    # Validation after each epoch feeds the model what it trains on; the final evaluation always sees images.
    epoch_val_loader = (accelerator.prepare(torch.utils.data.DataLoader(val_features, batch_size=config.batch_size))
                        if config.cache_features else val_loader)
    if scheduler is not None:
        # Stepped once per epoch on every process, so it is checkpointed but not wrapped by prepare.
        accelerator.register_for_checkpointing(scheduler)
    # The average follows what trains (the whole net, or its top with --cache-features); it is validated and
    # kept in place of the raw weights.
    weight_average = build_weight_average(accelerator.unwrap_model(model), config)
    if weight_average is not None:
        averaged = weight_average.module
        kept_net, eval_model = (averaged.net if isinstance(averaged, TrainableTop) else averaged), averaged
    else:
        kept_net, eval_model = net, model
    return Loop(model, optimizer, scheduler, train_loader, val_loader, epoch_val_loader, generator,
                build_batch_mixing(config, len(data.splits.labels)), weight_average, kept_net, eval_model)


# ---------------------------------------------------------------- phase 4: restore or start

def restore_or_start(config: TrainConfig, accelerator, loop: Loop, checkpoints: Path) -> dict:
    """The trainer state: from the last checkpoint with --resume, else fresh."""
    from safetensors.torch import load_file

    state = {"epoch": 0, "best_val_loss": math.inf, "best_epoch": 0, "epochs_without_improvement": 0,
             "history": []}
    if config.resume and (checkpoints / "last" / "trainer_state.json").is_file():
        accelerator.load_state(str(checkpoints / "last"))
        state = json.loads((checkpoints / "last" / "trainer_state.json").read_text())
        if loop.weight_average is not None:
            loop.weight_average.load_state_dict(load_file(str(checkpoints / "last" / AVERAGE_WEIGHTS)))
        accelerator.print(f"resumed from {checkpoints / 'last'} after epoch {state['epoch']}")
    elif config.resume:
        accelerator.print(f"--resume: no checkpoint in {checkpoints / 'last'}, starting fresh")
    elif accelerator.is_main_process and (Path(config.output_dir) / "model.safetensors").exists():
        accelerator.print(f"note: {config.output_dir} already holds a model; it will be replaced")
    if accelerator.is_main_process:
        checkpoints.mkdir(parents=True, exist_ok=True)
    return state


# ---------------------------------------------------------------- phase 5: fit

def train_one_epoch(model, loader, optimizer, accelerator, loss_weights, config: TrainConfig, progress,
                    batch_mixing=None, weight_average=None) -> tuple[float, float, int]:
    """Mean loss and accuracy over the epoch's training images, and how many images all processes trained on.
    With batch mixing, accuracy counts the label that dominates each mixed image."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for images, targets in progress(loader, desc="train"):
        if batch_mixing is not None:
            images, targets = batch_mixing(images, targets)
        logits = model(images.contiguous(memory_format=torch.channels_last))
        loss = focal_loss(logits, targets, config.gamma, loss_weights)
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
def validate(model, loader, accelerator, loss_weights, config: TrainConfig,
             progress) -> tuple[float, list[int], list[int]]:
    model.eval()
    losses, y_true, y_pred = [], [], []
    for images, targets in progress(loader, desc="val"):
        logits = model(images.contiguous(memory_format=torch.channels_last))
        # gather_for_metrics drops the samples padded in to even out the last batch across processes.
        logits, targets = accelerator.gather_for_metrics((logits, targets))
        losses.append(focal_loss(logits, targets, config.gamma, loss_weights) * len(targets))
        y_true += targets.tolist()
        y_pred += logits.argmax(dim=1).tolist()
    return (torch.stack(losses).sum() / len(y_true)).item(), y_true, y_pred


def fit(config: TrainConfig, accelerator, net, loop: Loop, loss_weights, state: dict, checkpoints: Path,
        progress) -> dict:
    """The epochs: train, validate, step the scheduler, keep the best weights and a resumable checkpoint, stop
    early when validation loss stops improving."""
    from accelerate.utils import set_seed

    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        started = time.time()
        # Shuffling, augmentation and dropout depend only on (seed, epoch), so a resumed run repeats them.
        set_seed(config.seed + epoch)
        loop.generator.manual_seed(config.seed + epoch)
        if config.unfreeze_at is not None and epoch >= config.unfreeze_at and net.frozen_blocks:
            net.freeze(len(net.blocks))
            accelerator.print(f"epoch {epoch}: all backbone blocks now train")
        train_loss, train_acc, train_images = train_one_epoch(loop.model, loop.train_loader, loop.optimizer,
                                                              accelerator, loss_weights, config, progress,
                                                              loop.batch_mixing, loop.weight_average)
        val_loss, y_true, y_pred = validate(loop.eval_model, loop.epoch_val_loader, accelerator, loss_weights,
                                            config, progress)
        val_acc = sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)
        lr = loop.optimizer.param_groups[0]["lr"]
        if isinstance(loop.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            loop.scheduler.step(val_loss)
        elif loop.scheduler is not None:
            loop.scheduler.step()

        improved = val_loss < state["best_val_loss"]
        if improved:
            state.update(best_val_loss=val_loss, best_epoch=epoch, epochs_without_improvement=0)
        else:
            state["epochs_without_improvement"] += 1
        record = {"epoch": epoch, "train_images": train_images, "train_loss": round(train_loss, 5),
                  "train_acc": round(train_acc, 4), "val_loss": round(val_loss, 5), "val_acc": round(val_acc, 4),
                  "lr": lr, "seconds": round(time.time() - started, 2)}
        state["history"].append(record)
        state["epoch"] = epoch
        accelerator.print(f"epoch {epoch}/{config.epochs}  train loss {train_loss:.4f} acc {train_acc:.3f}  "
                          f"val loss {val_loss:.4f} acc {val_acc:.3f}  lr {lr:.2e}  {record['seconds']:.1f}s"
                          + ("  *best" if improved else ""))

        accelerator.wait_for_everyone()
        if accelerator.is_main_process and improved:
            save_weights(loop.kept_net, checkpoints / BEST_WEIGHTS)
        accelerator.save_state(str(checkpoints / "last"))
        if accelerator.is_main_process:
            (checkpoints / "last" / "trainer_state.json").write_text(json.dumps(state, indent=1))
            if loop.weight_average is not None:
                save_weights(loop.weight_average, checkpoints / "last" / AVERAGE_WEIGHTS)
        if config.patience and state["epochs_without_improvement"] >= config.patience:
            accelerator.print(f"early stop: no better validation loss for {config.patience} epochs")
            break
    accelerator.wait_for_everyone()
    return state


# ---------------------------------------------------------------- phase 6: final evaluation

def read_crossval_summaries(paths: str | list[str], task: str) -> dict[str, dict]:
    """The numbers of `phonegrade crossval` summaries that a model card reports, by scheme: `crossval`
    (stratified k-fold) and `crossval_grouped` (leave-one-group-out), at most one of each."""
    found = {}
    for path in [paths] if isinstance(paths, str) else paths:
        try:
            summary = json.loads(Path(path).read_text())
            kept = card_numbers(summary)
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise ConfigError(f"--crossval-summary {path}: not a crossval.json written by `phonegrade crossval` "
                              f"({err.__class__.__name__}: {err})") from err
        if summary.get("task") != task:
            raise ConfigError(f"--crossval-summary {path} is for the {summary.get('task')} task, not {task}")
        grouped = summary.get("scheme") == GROUPED
        field_name = "crossval_grouped" if grouped else "crossval"
        if field_name in found:
            scheme = "leave-one-group-out" if grouped else "stratified"
            raise ConfigError(f"--crossval-summary: give at most one {scheme} cross-validation ({path} is the "
                              f"second)")
        found[field_name] = kept
    return found


def calibrate(classifier: PhoneGradeClassifier, run: str, accelerator) -> None:
    """Temperature scaling fitted on a crossval run's out-of-fold probabilities, folded into the final layer and
    recorded in config.json (`training.calibration`)."""
    summary, rows = read_crossval_run(Path(run))
    if summary.get("task") != classifier.task or summary.get("labels") != classifier.labels:
        raise ConfigError(f"--calibrate-from {run} is a {summary.get('task')} run; this model is a {classifier.task} "
                          f"model with labels {classifier.labels}")
    report = calibration_report(rows, classifier.labels, group="group" if summary.get("scheme") == GROUPED else None)
    apply_temperature(classifier.net, report["temperature"])
    classifier.config.training["calibration"] = {"run": display_name(run), **report}
    accelerator.print(f"calibration: temperature {report['temperature']} (out-of-fold ECE {report['ece']:.3f} -> "
                      f"{report['ece_scaled']:.3f} on {report['photos']} photos of {display_name(run)})")


def model_config(config: TrainConfig, net, data: TrainingData, pre: Preprocessing, weights: str,
                 trainable_blocks: int, state: dict, loss_weights, crossval_fold: dict | None) -> ModelConfig:
    """What the model folder's config.json says: the model, and how it was made (names, never local paths)."""
    splits, fold = data.splits, crossval_fold
    return ModelConfig(
        task=config.task, arch=config.arch, labels=tuple(splits.labels), preprocessing=pre,
        phone_prior=config.phone_prior,
        phone_classes=tuple(config.phone_classes) if config.phone_prior is not None else None,
        num_parameters=count_parameters(net),
        training={**{key: getattr(config, key) for key in TrainConfig.RECORDED},
                  "init_from": display_name(config.init_from) if config.init_from else None,
                  "weights": weights, "weights_source": describe_weights(config.arch, weights),
                  "trainable_blocks": trainable_blocks,
                  "class_weights": [round(w, 4) for w in loss_weights.tolist()] if loss_weights is not None else None,
                  "epochs_run": state["epoch"], "best_epoch": state["best_epoch"]},
        data={"name": display_name(splits.source), "revision": splits.revision,
              "split": f"fold {fold['fold']} of {fold['folds']} (seed {fold['seed']})" if fold else "validation",
              "crossval_fold": fold, "description": config.data_description, "terms": config.data_terms,
              "n_train": len(splits.train),
              "class_counts": dict(zip(splits.labels, label_counts(splits.train + splits.val, len(splits.labels)),
                                       strict=True)),
              "extra_train": data.extra_train},
        corrections=data.corrections,
        **(read_crossval_summaries(config.crossval_summary, config.task) if config.crossval_summary else {}),
        card_note=config.card_note)


def final_evaluation(config: TrainConfig, accelerator, loop: Loop, model_cfg: ModelConfig,
                     checkpoints: Path) -> tuple[PhoneGradeClassifier, dict]:
    """The kept weights (best or last), scored on the validation images through the class users load."""
    from safetensors.torch import load_file

    classifier = PhoneGradeClassifier(model_cfg)
    classifier.net.load_state_dict(load_file(str(checkpoints / BEST_WEIGHTS)) if config.keep == "best"
                                   else loop.kept_net.state_dict())
    if config.clean_bias:  # part of the weights before they are scored: cross-validation's figures include it
        apply_clean_bias(classifier.net, model_cfg.labels, config.clean_bias)
    classifier.to(accelerator.device).eval()
    y_true, y_pred = [], []
    with torch.no_grad():
        for images, targets in loop.val_loader:
            logits, targets = accelerator.gather_for_metrics((classifier(images), targets))
            y_true += targets.tolist()
            y_pred += logits.argmax(dim=1).tolist()
    metrics = compute_metrics(y_true, y_pred, list(model_cfg.labels), config.task, config.arch)
    classifier.config.metrics = {k: metrics[k] for k in ("accuracy", "macro_f1", "n_val")}
    return classifier, metrics


# ---------------------------------------------------------------- phase 7: the model folder

def base_model(config: TrainConfig, weights: str) -> str | None:
    """The Hub model this one was fine-tuned from, for the card's `base_model`: --init-from when it is a Hub id,
    else the Hub copy of the ImageNet weights a timm backbone started from."""
    if config.init_from:
        return config.init_from if not Path(config.init_from).exists() else None
    return imagenet_hub_id(config.arch) if weights == "imagenet" else None


def write_folder(config: TrainConfig, accelerator, classifier: PhoneGradeClassifier, metrics: dict, state: dict,
                 weights: str) -> None:
    """model.safetensors, config.json, the card, metrics.json, the confusion matrix and the training log; pushed
    to the Hub with --push-to-hub."""
    if not accelerator.is_main_process:
        return
    out = write_model_folder(config.output_dir, classifier, metrics, base_model=base_model(config, weights),
                             history=state["history"])
    accelerator.print("\n" + format_report(metrics))
    kept = (f"best epoch {state['best_epoch']}" if config.keep == "best"
            else f"last epoch {state['epoch']}; best was {state['best_epoch']}")
    accelerator.print(f"\nmodel folder: {out}  ({kept})")
    if config.push_to_hub:
        url = push_model_folder(out, config.push_to_hub, private=config.private, replace=config.force)
        accelerator.print(f"pushed to {url}")


# ---------------------------------------------------------------- the run

def train(config: TrainConfig, splits: Splits | None = None, crossval_fold: dict | None = None) -> Path:
    """Train, evaluate and write the model folder. `splits` replaces loading --data (a cross-validation fold;
    `crossval_fold` is then the fold's record, `data.crossval_fold_record`)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=accelerate_on_cpu())
    # Unset, the precision is Accelerate's (accelerate launch --mixed_precision, accelerate config): record it.
    config = dataclasses.replace(config, mixed_precision=str(accelerator.mixed_precision))
    checkpoints = Path(config.output_dir) / CHECKPOINT_DIR

    def progress(iterable, desc):
        return tqdm(iterable, desc=desc, leave=False, disable=config.no_progress or not accelerator.is_main_process)

    if config.push_to_hub and accelerator.is_main_process:
        check_may_push(config.push_to_hub, config.force)  # now, not after the training it would waste
    set_seed(config.seed)
    data = assemble_data(config, accelerator, splits)
    net, weights = build_model(config, len(data.splits.labels), accelerator)
    trainable_blocks = len(net.blocks) - net.frozen_blocks  # as set up (--unfreeze-at changes it later)
    loss_weights = balanced_class_weights(data.train_counts) if config.class_weights == "auto" else None
    pre = config.preprocessing()
    loop = build_loaders(config, net, data, pre, accelerator, progress)
    state = restore_or_start(config, accelerator, loop, checkpoints)
    state = fit(config, accelerator, net, loop, loss_weights, state, checkpoints, progress)
    model_cfg = model_config(config, net, data, pre, weights, trainable_blocks, state, loss_weights, crossval_fold)
    classifier, metrics = final_evaluation(config, accelerator, loop, model_cfg, checkpoints)
    if config.calibrate_from:  # after the evaluation: scaling the logits never changes the predicted label
        calibrate(classifier, config.calibrate_from, accelerator)
    write_folder(config, accelerator, classifier, metrics, state, weights)
    accelerator.end_training()
    return Path(config.output_dir)
