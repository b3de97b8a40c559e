"""`phonegrade synth`: write a procedurally generated dataset (drawings, not photos: for demos and tests).

    phonegrade synth --task side --out runs/synth-side --per-class 100 --size 128
"""

from __future__ import annotations

import argparse

from ..labels import TASK_LABELS
from ..synth import write_synthetic_dataset
from . import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth", formatter_class=HelpFormatter,
        help="write a procedurally generated dataset (for demos and tests)",
        description="Render synthetic phone photos into DIR/{train,val}/{class}/*.png (80/20, stratified). "
                    "Not real photos: for demos and tests.")
    parser.add_argument("--task", required=True, choices=sorted(TASK_LABELS))
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--per-class", type=int, default=100, help="images per class")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    counts = write_synthetic_dataset(args.task, args.out, args.per_class, size=args.size, seed=args.seed,
                                     overwrite=args.overwrite)
    total = sum(sum(split.values()) for split in counts.values())
    print(f"wrote {total} synthetic {args.task} images to {args.out}: "
          + "; ".join(f"{split} {dict(c)}" for split, c in counts.items()))
    return 0
