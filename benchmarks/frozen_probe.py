"""Leave-one-source-out accuracy of frozen-trunk recipes, from features computed once.

With every block frozen (`--trainable-blocks 0 --cache-features --no-augment`), a recipe is a trunk, an input size
and how the head is trained on the trunk's pooled output. This computes that output once per (architecture, size,
flip) with phonegrade's own loading, preprocessing and weights, then trains the shared head (models.net) with focal
loss, AdamW and a cosine schedule as `phonegrade train` does, once per held-out source. A sweep that would take
hours of `phonegrade crossval` runs takes minutes; the recipe it picks is then confirmed with `phonegrade crossval
--group-by source_repo`, the yardstick docs/models.md reports.

    python benchmarks/frozen_probe.py --task side --data ../shared/data/side-real-dev ../shared/data/side-real-extra \
        --extra-train ../shared/data/scratch-real-dev=front --arch efficientnet_lite2 --sizes 260 320 \
        --output results.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from phonegrade.data import extra_training_samples, load_all, read_label_column
from phonegrade.labels import TASK_LABELS
from phonegrade.losses import balanced_class_weights, focal_loss
from phonegrade.models import create_model
from phonegrade.models.net import classification_head
from phonegrade.models.pretrained import imagenet_classifier
from phonegrade.models.prior import PHONE_CLASSES
from phonegrade.models.registry import default_preprocessing, parse_arch
from phonegrade.transforms import eval_transform

# The options that shape a recipe, recorded with its figures.
RECIPE_OPTIONS = ("epochs", "lr", "weight_decay", "gamma", "class_weights", "heads", "flip_train",
                  "flip_test", "prior_in_training", "seeds")


def pooled_features(arch: str, size: int, samples, flip: bool, cache: Path, crop_pct: float = 1.0) -> np.ndarray:
    """The frozen trunk's pooled output per photo, cached on disk by arch, size, crop, flip and the photos' keys."""
    digest = hashlib.sha256("\n".join(s.key for s in samples).encode()).hexdigest()[:12]
    crop = "" if crop_pct == 1.0 else f"crop{crop_pct}-"
    path = cache / f"{arch}-{size}-{crop}{'flip' if flip else 'plain'}-{len(samples)}-{digest}.npz"
    if path.exists():
        return np.load(path)["features"]
    pre = dataclasses.replace(default_preprocessing(arch), image_size=size, crop_pct=crop_pct)
    transform = eval_transform(pre)
    net = create_model(arch, 3, weights="imagenet", trainable_blocks=0).eval()
    features = []
    with torch.no_grad():
        for sample in tqdm(samples, desc=f"{arch} {size}px{' flipped' if flip else ''}"):
            x = transform(pre.load(sample.load()))[None]
            if flip:
                x = x.flip(-1)
            features.append(net.frozen_features(x).mean(dim=(2, 3))[0].numpy())
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=np.stack(features))
    return np.stack(features)


def source_features(arch: str, size: int, sources: list[list], flip: bool, cache: Path,
                    crop_pct: float = 1.0) -> np.ndarray:
    """pooled_features of several sources' photos, each source cached on its own (runs with or without a source
    reuse the others)."""
    return np.concatenate([pooled_features(arch, size, samples, flip, cache, crop_pct)
                           for samples in sources if samples])


def imagenet_log_probabilities(arch: str, features: np.ndarray) -> torch.Tensor:
    """ImageNet's 1000 class log-probabilities from the pooled features: the weight file's own classifier, as
    models.prior applies it."""
    weight, bias = imagenet_classifier(parse_arch(arch))
    return F.log_softmax(torch.from_numpy(features).float() @ weight.T + bias, dim=1)


def head_inputs(arch: str, features: np.ndarray, inputs: str) -> np.ndarray:
    """What the head reads: the pooled trunk output, ImageNet's class log-probabilities, or both side by side."""
    if inputs == "pooled":
        return features
    log_p = imagenet_log_probabilities(arch, features).numpy()
    return log_p if inputs == "imagenet" else np.concatenate([features, log_p], axis=1)


def prior_boost(prior: float, phone: np.ndarray) -> torch.Tensor:
    """What the phone prior adds to `none`'s logit (models.prior.PhonePrior): log(threshold / p_phone), if positive."""
    return F.relu(math.log(prior) - torch.from_numpy(phone).float())


def train_head(x: torch.Tensor, y: torch.Tensor, num_classes: int, epochs: int, lr: float, weight_decay: float,
               gamma: float, seed: int, batch_size: int = 32, offset: torch.Tensor | None = None,
               balanced: bool = True) -> torch.nn.Module:
    """The shared head on pooled features, trained as `phonegrade train --cache-features` trains it; `offset`:
    (photos, classes) added to the head's logits in training (the phone prior's boost, when it trains too)."""
    torch.manual_seed(seed)
    head = classification_head(x.shape[1], num_classes)
    weights = balanced_class_weights(torch.bincount(y, minlength=num_classes).tolist()) if balanced else None
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            batch = order[start:start + batch_size]
            if len(batch) < 2:  # BatchNorm needs two
                continue
            logits = head(x[batch, :, None, None])
            if offset is not None:
                logits = logits + offset[batch]
            loss = focal_loss(logits, y[batch], gamma, weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return head.eval()


def leave_one_out(features, flipped, phone, labels, groups, scored, args, prior: float | None,
                  none_index: int, seed: int) -> np.ndarray:
    """Class log-probabilities per scored photo (NaN for the others), each from a head that never saw a photo of
    its group."""
    log_probabilities = np.full((len(labels), 3), np.nan)
    x, y = torch.from_numpy(features).float(), torch.from_numpy(labels).long()
    for group in sorted(set(groups[scored])):
        train = groups != group
        held = scored & (groups == group)
        train_x, train_y = x[train], y[train]
        offset = None
        if prior is not None and args.prior_in_training:
            offset = torch.zeros(len(train_y), 3)
            offset[:, none_index] = prior_boost(prior, phone[train])
        if flipped is not None and args.flip_train:
            train_x = torch.cat([train_x, torch.from_numpy(flipped[train]).float()])
            train_y = torch.cat([train_y, train_y])
            offset = None if offset is None else torch.cat([offset, offset])
        # --heads K: K heads from different seeds, their probabilities averaged (one trunk pass serves them all).
        heads = [train_head(train_x, train_y, 3, args.epochs, args.lr, args.weight_decay, args.gamma,
                            seed * args.heads + k, offset=offset, balanced=args.class_weights == "auto")
                 for k in range(args.heads)]
        views = [x[held]] + ([torch.from_numpy(flipped[held]).float()] if flipped is not None and args.flip_test
                             else [])
        with torch.no_grad():
            log_p = torch.stack([F.log_softmax(head(view[:, :, None, None]), dim=1)
                                 for head in heads for view in views]).logsumexp(0) - math.log(len(heads) * len(views))
            if prior is not None:
                log_p[:, none_index] += prior_boost(prior, phone[held])
        log_probabilities[held] = log_p.numpy()
    return log_probabilities


def predict(log_probabilities: np.ndarray, names, clean_bias: float) -> np.ndarray:
    """The predicted class per photo (-1 where not scored); clean_bias is added to `no_scratch`'s log-probability
    first: a photo is graded damaged only when damage is that much likelier."""
    if clean_bias:
        log_probabilities = log_probabilities.copy()
        log_probabilities[:, names.index("no_scratch")] += clean_bias
    predictions = np.nan_to_num(log_probabilities, nan=-np.inf).argmax(axis=1)
    return np.where(np.isnan(log_probabilities).any(axis=1), -1, predictions)


def smallest_bias_within(log_probabilities, labels, groups, scored, names, biases, most_clean_damaged: float):
    """Predictions with a clean bias chosen without the held-out group: for each group, the smallest of `biases`
    that grades at most `most_clean_damaged` of the other groups' clean photos damaged (the largest if none
    does), as a user would pick it from cross-validation before meeting a new source."""
    by_bias = {bias: predict(log_probabilities, names, bias) for bias in sorted(biases)}
    clean = names.index("no_scratch")
    chosen, picks = np.full(len(labels), -1), {}
    for group in sorted(set(groups[scored])):
        others = scored & (groups != group) & (labels == clean)
        picks[group] = next((bias for bias, p in by_bias.items() if (p[others] != clean).mean() <= most_clean_damaged),
                            max(biases))
        held = scored & (groups == group)
        chosen[held] = by_bias[picks[group]][held]
    return chosen, picks


def figures(predictions, labels, groups, scored, names, kinds) -> dict:
    """Accuracy, recall per class and accuracy per group and per kind (labels.csv's `kind`) over the scored photos;
    for scratch also damaged vs clean and the share of clean photos graded damaged."""
    p, y, g, k = predictions[scored], labels[scored], groups[scored], kinds[scored]
    out = {"accuracy": round(float((p == y).mean()), 4),
           "recall": {n: round(float((p[y == i] == i).mean()), 4) for i, n in enumerate(names) if (y == i).any()},
           "per_group": {group: round(float((p[g == group] == y[g == group]).mean()), 4) for group in sorted(set(g))},
           "per_kind": {kind: round(float((p[k == kind] == y[k == kind]).mean()), 4) for kind in sorted(set(k))}}
    if "no_scratch" in names:
        clean = names.index("no_scratch")
        out["damaged_vs_clean"] = round(float(((p == clean) == (y == clean)).mean()), 4)
        out["clean_graded_damaged"] = round(float((p[y == clean] != clean).mean()), 4)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASK_LABELS), required=True)
    parser.add_argument("--data", nargs="+", required=True, help="the folders scored (grouped by --group-by)")
    parser.add_argument("--extra-train", nargs="*", default=[], help="DIR=LABEL: trained on, never scored")
    parser.add_argument("--group-by", default="source_repo")
    parser.add_argument("--arch", nargs="+", default=["efficientnet_lite2"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[260])
    parser.add_argument("--crop-pcts", nargs="+", type=float, default=[1.0],
                        help="1.0: the whole photo squashed to a square (phonegrade's default); below: the centre "
                             "(train --crop-pct)")
    parser.add_argument("--priors", nargs="+", type=float, default=[0.0], help="phone prior thresholds; 0: none")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--gamma", type=float, default=2.0)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--flip-train", action="store_true", help="train on flipped copies too")
    parser.add_argument("--flip-test", action="store_true", help="average the photo's and its mirror's probabilities")
    parser.add_argument("--phone-classes", nargs="+", type=int,
                        help="ImageNet classes the prior counts as a phone (default: models.prior.PHONE_CLASSES)")
    parser.add_argument("--heads", type=int, default=1, help="heads trained per fold, probabilities averaged")
    parser.add_argument("--class-weights", choices=("auto", "none"), default="auto")
    parser.add_argument("--prior-in-training", action="store_true",
                        help="the phone prior's boost is part of the logits in training too, not only in prediction")
    parser.add_argument("--clean-biases", nargs="+", type=float, default=[0.0],
                        help="scratch task: added to no_scratch's log-probability before the grade is read; with "
                             "several, a last row also picks one per held-out source on the others (the smallest "
                             "that grades at most --most-clean-damaged of their clean photos damaged)")
    parser.add_argument("--most-clean-damaged", type=float, default=0.03)
    parser.add_argument("--inputs", nargs="+", choices=("pooled", "imagenet", "both"), default=["pooled"],
                        help="what the head reads (head_inputs)")
    parser.add_argument("--cache-dir", default="runs/probe-cache", help="where computed features are kept")
    parser.add_argument("--output", help="append the results (one JSON line per recipe) to this file")
    args = parser.parse_args(argv)

    names = TASK_LABELS[args.task]
    if any(args.priors) and "none" not in names:
        parser.error("the phone prior raises `none`: side task only")
    if any(args.clean_biases) and "no_scratch" not in names:
        parser.error("the clean bias raises `no_scratch`: scratch task only")
    scored_splits, origins = load_all(args.data, args.task)
    samples = list(scored_splits.train)
    groups = read_label_column(samples, origins, args.group_by)
    kinds = read_label_column(samples, origins, "kind", required=False)
    extras = [extra_training_samples(spec, args.task)[0] for spec in args.extra_train]
    everything = samples + [s for found in extras for s in found]
    by_folder = [[s for s, o in zip(samples, origins, strict=True) if o == folder] for folder in dict.fromkeys(origins)]
    sources = by_folder + extras
    if [s.key for part in sources for s in part] != [s.key for s in everything]:
        raise RuntimeError("the photos of several folders are not listed folder by folder")
    groups = np.array(groups + ["(extra training)"] * (len(everything) - len(samples)))
    kinds = np.array(kinds + ["(extra training)"] * (len(everything) - len(samples)))
    labels = np.array([s.label for s in everything])
    scored = np.arange(len(everything)) < len(samples)
    need_flip = args.flip_train or args.flip_test
    cache = Path(args.cache_dir)
    phone_classes = list(args.phone_classes or PHONE_CLASSES)
    recipe = {"task": args.task, "data": [Path(d).name for d in args.data], "group_by": args.group_by,
              **{key: getattr(args, key) for key in RECIPE_OPTIONS},
              "extra_train": [Path(spec).name for spec in args.extra_train],  # names, not this machine's paths
              # the classes the prior counted, also when they were the default then
              "phone_classes": phone_classes if any(args.priors) else None}
    for arch, size, crop_pct in itertools.product(args.arch, args.sizes, args.crop_pcts):
        features = source_features(arch, size, sources, False, cache, crop_pct)
        # log p(phone) as the prior reads it, over --phone-classes or its own classes.
        phone = imagenet_log_probabilities(arch, features)[:, phone_classes]
        phone = phone.logsumexp(dim=1).numpy()
        flipped = source_features(arch, size, sources, True, cache, crop_pct) if need_flip else None
        for inputs, prior in itertools.product(args.inputs, args.priors):
            x = head_inputs(arch, features, inputs)
            x_flipped = head_inputs(arch, flipped, inputs) if need_flip else None
            log_probabilities = [leave_one_out(x, x_flipped, phone, labels, groups, scored, args, prior or None,
                                               names.index("none") if "none" in names else 0, seed)
                                 for seed in args.seeds]
            setting = {"arch": arch, "size": size, "crop_pct": crop_pct, "inputs": inputs, "prior": prior}
            for bias in args.clean_biases:
                report({**setting, "clean_bias": bias, **recipe},
                       [figures(predict(lp, names, bias), labels, groups, scored, names, kinds)
                        for lp in log_probabilities],
                       args.output)
            if len(args.clean_biases) > 1:
                chosen = [smallest_bias_within(lp, labels, groups, scored, names, args.clean_biases,
                                               args.most_clean_damaged) for lp in log_probabilities]
                report({**setting, "clean_bias": f"per source, the smallest grading at most "
                                                 f"{args.most_clean_damaged} of the other sources' clean photos "
                                                 "damaged", **recipe},
                       [figures(p, labels, groups, scored, names, kinds) | {"clean_bias_picked": picks}
                        for p, picks in chosen], args.output)


def report(recipe: dict, runs: list[dict], output: str | None) -> None:
    """Print a recipe's mean figures and its first seed's details; append all of them to `output`."""
    result = {**recipe, "accuracy": round(float(np.mean([r["accuracy"] for r in runs])), 4), "runs": runs}
    for key in ("damaged_vs_clean", "clean_graded_damaged"):
        if key in runs[0]:
            result[key] = round(float(np.mean([r[key] for r in runs])), 4)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}
                     | {k: v for k, v in runs[0].items() if k not in result}))
    if output:
        with open(output, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
