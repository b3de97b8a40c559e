"""`phonegrade train`: train a classifier (also `accelerate launch phonegrade/train.py ...`, the same options).

    phonegrade train --config recipes/side-default.yaml --data DIR --output-dir OUT
    accelerate launch --multi_gpu phonegrade/train.py --task side --arch efficientnet_lite0 --data DIR --output-dir OUT

OUT becomes a Hub-style model folder (model.safetensors, config.json, README.md card, metrics.json,
confusion_matrix.png); see `phonegrade.training` for the phases of a run.
"""

from __future__ import annotations

import argparse

from ..train_config import TrainConfig
from ..training import train
from . import HelpFormatter, add_training_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", formatter_class=HelpFormatter, help="train a classifier",
        description="Train a classifier into a Hub-style model folder; the same as `accelerate launch "
                    "phonegrade/train.py`. Options can come from a recipe file (--config).")
    add_training_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    train(TrainConfig.from_options(vars(args)))
    return 0
