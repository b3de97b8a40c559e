"""`phonegrade export`: a model as ONNX (for ONNX Runtime) or TorchScript, checked against the original.

    phonegrade export --model runs/side --format onnx --int8 --data my-photos/

int8 (ONNX only) is static quantisation of the convolutional trunk with ONNX Runtime: weights per output channel,
activations with ranges calibrated on training images; the first convolution and the classification head stay fp32.
After writing the file the export is run on check images next to the original model, and the top-1 agreement and
the largest difference in any class probability are printed (and the accuracy of both, as the images are labelled).
The check images are the model's validation split of --data, or synthetic renders when there is no --data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..classifier import PhoneGradeClassifier
from ..exporting import FORMATS, SUFFIXES, ExportedClassifier, export, labelled_images
from ..inference import compare
from . import MODEL_HELP, HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", formatter_class=HelpFormatter,
        help="export a model to ONNX or TorchScript (ONNX optionally int8) and check it agrees",
        description="Write an ONNX or TorchScript copy of a model (fp32, or ONNX int8 with --int8), then compare "
                    "it with the original on images and print top-1 agreement and the largest probability "
                    "difference.")
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--format", choices=FORMATS, required=True, help="onnx (ONNX Runtime) or torchscript")
    parser.add_argument("--int8", action="store_true", help="static int8 quantisation, calibrated on images (ONNX)")
    parser.add_argument("--output", help="file to write (default: MODEL/model[.int8].onnx or "
                                         ".torchscript.pt, or the current folder for a Hub model)")
    parser.add_argument("--data", help="labelled photos (same forms as training): int8 calibrates on the model's "
                                       "training split of them, the check runs on its validation split (default: "
                                       "synthetic renders)")
    parser.add_argument("--check-images", type=int, default=200,
                        help="at most this many images each for calibration (train split) and the check (val split)")
    parser.add_argument("--min-agreement", type=float, default=0.95,
                        help="exit status 1 when fewer of the check images get the original's top-1 label")
    parser.add_argument("--revision", help="Hub revision of --model")
    parser.set_defaults(run=run)


def default_output(model: str, fmt: str, int8: bool) -> Path:
    """Next to the weights for a local model folder; in the current folder for a Hub model."""
    folder = Path(model) if Path(model).is_dir() else Path(".")
    return folder / f"model{'.int8' if int8 else ''}{SUFFIXES[fmt]}"


def run(args: argparse.Namespace) -> int:
    classifier = PhoneGradeClassifier.from_pretrained(args.model, revision=args.revision)
    output = Path(args.output) if args.output else default_output(args.model, args.format, args.int8)
    # Calibrate on training images, check on validation images: the check is not on what int8 was fitted to.
    calibration, _, _ = labelled_images(classifier, args.data, "train", args.check_images)
    pixels, labels, described = labelled_images(classifier, args.data, "val", args.check_images)
    export(classifier, args.format, args.int8, output, calibration)
    result = compare(classifier, ExportedClassifier(output), pixels, labels)
    print(f"wrote {output} ({args.format}, {'int8' if args.int8 else 'fp32'}, "
          f"{output.stat().st_size / 1e6:.1f} MB)")
    print(f"checked on {described}: top-1 agreement {100 * result['top1_agreement']:.1f}%, "
          f"max probability difference {result['max_probability_difference']:.4f}; accuracy "
          f"{result['accuracy_original']:.3f} original, {result['accuracy_exported']:.3f} exported")
    if result["top1_agreement"] < args.min_agreement:
        print(f"the export agrees with the original on fewer than {100 * args.min_agreement:.0f}% of the images "
              f"(--min-agreement)", file=sys.stderr)
        return 1
    return 0
