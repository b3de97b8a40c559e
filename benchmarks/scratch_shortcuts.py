"""Does a scratch model grade the data's shortcuts instead of the damage? Every clean (no_scratch) photo is graded
by the cross-validation fold model that never trained on it three times: as it is, with a stock-photo watermark
pasted over it, and shrunk inside mirrored-edge padding (the look of one cracked-phone export). A clean photo graded
damaged only with the watermark or the padding means the model reads that shortcut.

    .venv/bin/python benchmarks/scratch_shortcuts.py --crossval runs/scratch-default-cv \\
        --output benchmarks/results/scratch_shortcuts.json

--crossval is the output folder of `phonegrade crossval` on the scratch task (its predictions.csv and fold-*/
models); --kinds a CSV with 'file' and 'kind' columns to count per kind of photo (default: the run's own `kind` column,
from the data folders' labels.csv). Prints, per kind, how many clean photos each variant makes the model grade
damaged; the last line printed is one JSON object, also written to --output.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
from common import ROOT  # noqa: F401  (puts phonegrade on sys.path)
from PIL import Image, ImageDraw, ImageFont

from phonegrade import PhoneGradeClassifier

VARIANTS = ("as is", "watermark", "mirror padding")


def watermark(image: Image.Image) -> Image.Image:
    """A stock-photo watermark: faint repeated text and an opaque caption bar."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=max(12, image.width // 12))
    for y in range(0, image.height, max(1, image.height // 4)):
        draw.text((image.width * 0.1, y), "dreamstime", fill=(255, 255, 255, 110), font=font)
    bar = max(8, image.height // 14)
    draw.rectangle((0, image.height - bar, image.width, image.height), fill=(30, 30, 30, 230))
    draw.text((8, image.height - bar + 2), "dreamstime.com  ID 123456789", fill=(255, 255, 255, 255),
              font=ImageFont.load_default(size=max(10, bar // 2)))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def mirror_padding(image: Image.Image, side: int = 640, fill: float = 0.7) -> Image.Image:
    """The photo shrunk to `fill` of a square canvas whose border mirrors the photo's own edges."""
    image = image.copy()
    image.thumbnail((int(side * fill), int(side * fill)))
    pad_x, pad_y = (side - image.width) // 2, (side - image.height) // 2
    pixels = np.pad(np.asarray(image), ((pad_y, side - image.height - pad_y), (pad_x, side - image.width - pad_x),
                                        (0, 0)), mode="symmetric")
    return Image.fromarray(pixels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crossval", required=True, help="output folder of `phonegrade crossval` (scratch task)")
    parser.add_argument("--kinds", help="CSV with 'file' (relative to the data folder) and 'kind' columns")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    run = Path(args.crossval)
    with open(run / "predictions.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] == "no_scratch"]
    if not rows:
        raise SystemExit(f"{run}/predictions.csv has no no_scratch photos: is it a scratch crossval run?")
    kinds = {}
    if args.kinds:
        with open(args.kinds, newline="") as f:
            kinds = {r["file"]: r["kind"] for r in csv.DictReader(f)}
    models, damaged, counted = {}, Counter(), Counter()
    for row in rows:
        folder = run / f"fold-{row['seed']}-{row['fold']}"
        model = models.setdefault(folder, PhoneGradeClassifier.from_pretrained(folder))
        kind = next((k for file, k in kinds.items() if row["image"].endswith("/" + file)), row.get("kind") or "all")
        photo = Image.open(row["image"]).convert("RGB")
        variants = [photo, watermark(photo), mirror_padding(photo)]
        for name, probabilities in zip(VARIANTS, model.predict(variants, fold_batchnorm=True), strict=True):
            counted[(kind, name)] += 1
            damaged[(kind, name)] += max(probabilities, key=probabilities.get) != "no_scratch"
    result = {"crossval": run.name, "clean_photos": len(rows), "graded_damaged": {}}
    for kind in sorted({k for k, _ in counted}):
        result["graded_damaged"][kind] = {name: [damaged[(kind, name)], counted[(kind, name)]] for name in VARIANTS}
        print(f"{kind:12s} " + "  ".join(f"{name}: {damaged[(kind, name)]}/{counted[(kind, name)]} graded damaged"
                                         for name in VARIANTS))
    totals = {name: sum(count for (_, variant), count in damaged.items() if variant == name) for name in VARIANTS}
    print("all clean photos: " + ", ".join(f"{name} {totals[name]}/{len(rows)}" for name in VARIANTS))
    result["total_graded_damaged"] = totals
    print(json.dumps(result))
    if args.output:
        args.output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
