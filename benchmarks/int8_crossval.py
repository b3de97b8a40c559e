"""int8 ONNX against fp32 on real photos, by cross-validation: every photo is graded by a fold model that did not
train on it, once in fp32 and once as that fold model's int8 ONNX export (calibrated on the fold's training photos).

    .venv/bin/python benchmarks/int8_crossval.py --crossval runs/side-cv --data ../shared/data/side-real-dev [MORE]

--crossval is the output folder of `phonegrade crossval` (its fold-*/ model folders). Prints pooled accuracy of
both, their top-1 agreement and the difference in points (target: int8 within 1 point of fp32); the last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from common import load_average  # puts phonegrade on sys.path

from phonegrade import PhoneGradeClassifier
from phonegrade.data import PhotoDataset, model_validation_split
from phonegrade.exporting import export, load_exported

TARGET_POINTS = 1.0


def pixels_and_labels(classifier, samples) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*PhotoDataset(samples, classifier.transform, classifier.image_size), strict=True)
    return torch.stack(images), torch.tensor(labels)


@torch.inference_mode()
def grade_fold(folder: Path, data: list[str], calibration_images: int, work: Path) -> dict:
    classifier = PhoneGradeClassifier.from_pretrained(folder)
    splits = model_validation_split(classifier.config, data)
    step = max(1, len(splits.train) // calibration_images)
    calibration, _ = pixels_and_labels(classifier, splits.train[::step][:calibration_images])
    pixels, labels = pixels_and_labels(classifier, splits.val)
    int8 = export(classifier, "onnx", True, work / f"{folder.name}.int8.onnx", calibration)
    fp32_pred = torch.cat([classifier(batch).argmax(1) for batch in pixels.split(16)])
    run_int8 = load_exported(int8)
    int8_pred = torch.cat([run_int8(batch).argmax(1) for batch in pixels.split(16)])
    return {"fold": folder.name, "images": len(labels), "fp32_correct": int((fp32_pred == labels).sum()),
            "int8_correct": int((int8_pred == labels).sum()), "agree": int((fp32_pred == int8_pred).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crossval", required=True, help="output folder of `phonegrade crossval`")
    parser.add_argument("--data", nargs="+", required=True, help="the data folders the crossval run was made on")
    parser.add_argument("--calibration-images", type=int, default=100, help="training photos per fold for int8")
    args = parser.parse_args()
    started, load_before = time.time(), load_average()
    folds = sorted(p for p in Path(args.crossval).glob("fold-*") if (p / "model.safetensors").is_file())
    if not folds:
        raise SystemExit(f"{args.crossval}: no fold-*/ model folders (is it a `phonegrade crossval` output?)")
    with tempfile.TemporaryDirectory() as tmp:
        results = [grade_fold(folder, args.data, args.calibration_images, Path(tmp)) for folder in folds]
    images = sum(r["images"] for r in results)
    fp32 = sum(r["fp32_correct"] for r in results) / images
    int8 = sum(r["int8_correct"] for r in results) / images
    agreement = sum(r["agree"] for r in results) / images
    points = round(100 * (int8 - fp32), 2)
    print(f"{len(folds)} fold models, {images} held-out photos: accuracy fp32 {fp32:.4f}, int8 ONNX {int8:.4f} "
          f"({points:+.2f} points), top-1 agreement {100 * agreement:.1f}%")
    settings = {**vars(args), "crossval": Path(args.crossval).name, "data": [Path(d).name for d in args.data]}
    print(json.dumps({"benchmark": "int8_crossval", "settings": settings, "folds": results, "images": images,
                      "fp32_accuracy": round(fp32, 4), "int8_accuracy": round(int8, 4),
                      "top1_agreement": round(agreement, 4), "int8_minus_fp32_points": points,
                      "targets": {f"int8_within_{TARGET_POINTS:g}_point": abs(points) <= TARGET_POINTS},
                      "load_average_before": load_before, "seconds": round(time.time() - started)}))


if __name__ == "__main__":
    main()
