"""`phonegrade predict`: per-class probabilities for many images, printed or written to CSV / JSON Lines.

    phonegrade predict --model OUT photos/ --output grades.csv
    accelerate launch --multi_gpu --num_processes 4 -m phonegrade.cli predict --model OUT photos/ --output grades.jsonl

Images are decoded and resized in DataLoader worker processes while the model runs whole batches in
channels_last layout, BatchNorm folded (`phonegrade.inference`). Under `accelerate launch` (several processes,
GPUs or machines) each process grades a contiguous share of the images and the main process writes all results,
in input order.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..classifier import PhoneGradeClassifier
from ..data import undecoded_image_loaders
from ..errors import ConfigError
from ..exporting import ExportedClassifier, is_exported_file
from ..images import IMAGE_EXTENSIONS
from ..inference import ImageSource, iter_probabilities
from ..utils import accelerate_on_cpu
from . import MODEL_HELP, HelpFormatter

OUTPUT_FORMATS = (".csv", ".jsonl")


# ---------------------------------------------------------------- `phonegrade predict`

def list_images(inputs: Iterable[str]) -> list[tuple[str, ImageSource]]:
    """(name, source) for each image file, each image under a folder, and each row of a `datasets` folder
    saved with `save_to_disk`. A path that does not exist stays in the list, to be reported as unreadable."""
    images: list[tuple[str, ImageSource]] = []
    for item in inputs:
        path = Path(item)
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            import datasets

            loaded = datasets.load_from_disk(str(path))
            splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
            for split, dataset in splits:
                prefix = f"{path}:{split}" if split else str(path)
                images += [(f"{prefix}#{i}", load) for i, load in enumerate(undecoded_image_loaders(dataset))]
        elif path.is_dir():
            images += [(str(p), str(p)) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS]
        else:
            images.append((str(path), str(path)))
    return images


def prediction_records(classifier, images: Sequence[tuple[str, ImageSource]], batch_size: int, workers: int,
                       progress: bool | None) -> Iterator[dict]:
    """{"image", "label", "probabilities"} or {"image", "error"} per image, computed in channels_last layout
    (with BatchNorm folded, for a PyTorch model)."""
    sources = [source for _, source in images]
    probabilities = iter_probabilities(classifier, sources, batch_size, workers, progress, channels_last=True,
                                       fold_batchnorm=True)
    for (name, _), (row, error) in zip(images, probabilities, strict=True):
        if error:
            yield {"image": name, "error": error}
        else:
            probabilities = {label: float(p) for label, p in zip(classifier.labels, row, strict=True)}
            yield {"image": name, "label": max(probabilities, key=probabilities.get), "probabilities": probabilities}


def write_records(records: Iterable[dict], labels: Sequence[str], output: str | None, json_lines: bool) -> int:
    """Print one line per image, or write a .csv / .jsonl file; returns the number of unreadable images."""
    failures = written = 0
    if output is None:
        for record in records:
            failures += "error" in record
            if json_lines:
                print(json.dumps(record), flush=True)
            elif "error" in record:
                print(f"{record['image']}: error: {record['error']}", flush=True)
            else:
                ranked = sorted(record["probabilities"].items(), key=lambda kv: -kv[1])
                print(f"{record['image']}: " + "  ".join(f"{label} {p:.3f}" for label, p in ranked), flush=True)
        return failures
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file) if path.suffix == ".csv" else None
        if writer:
            writer.writerow(["image", "label", *labels, "error"])
        for record in records:
            written += 1
            if "error" in record:
                failures += 1
                print(f"{record['image']}: error: {record['error']}", file=sys.stderr)
            if writer is None:
                file.write(json.dumps(record) + "\n")
            elif "error" in record:
                writer.writerow([record["image"], "", *([""] * len(labels)), record["error"]])
            else:
                writer.writerow([record["image"], record["label"],
                                 *(f"{record['probabilities'][label]:.6f}" for label in labels), ""])
    print(f"wrote {written} predictions to {path}" + (f" ({failures} unreadable)" if failures else ""))
    return failures


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", formatter_class=HelpFormatter,
        help="per-class probabilities for images, folders or `datasets` folders",
        description="Per-class probabilities, in batches; `accelerate launch -m phonegrade.cli predict ...` splits "
                    "the images across processes.")
    parser.add_argument("--model", required=True,
                        help=f"{MODEL_HELP}; or a .onnx / .torchscript.pt file from `phonegrade export`")
    parser.add_argument("images", nargs="+",
                        help="image files, folders of images, or `datasets` folders saved with save_to_disk")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--output", metavar="FILE.csv|FILE.jsonl",
                        help="write the predictions to a CSV (one probability column per label) or JSON Lines file")
    # Measured on 2 CPU cores at 224 px: PyTorch is fastest in batches of about 4 (larger ones fall out of cache),
    # ONNX Runtime in batches of 16; and a decoding worker only competes with the compute threads there.
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=max(0, min(4, (os.cpu_count() or 1) - 2)),
                        help="DataLoader worker processes that decode and resize images (0: the main process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (shown on a terminal)")
    parser.add_argument("--revision", help="Hub revision of --model")
    parser.set_defaults(run=run)


def process_state():
    """Accelerate's view of this process: its share of the work and its device."""
    from accelerate import PartialState

    return PartialState(cpu=accelerate_on_cpu())


def run(args: argparse.Namespace) -> int:
    """Grade every image; under `accelerate launch` each process takes a share. Exit status 1 if any image
    could not be read."""
    from accelerate.utils import gather_object

    if args.output and Path(args.output).suffix not in OUTPUT_FORMATS:
        raise ConfigError(f"--output must end in {' or '.join(OUTPUT_FORMATS)}: {args.output}")
    state = process_state()
    if is_exported_file(args.model):
        classifier = ExportedClassifier(args.model)
    else:
        with state.main_process_first():  # one process downloads a Hub model, the others find it in the cache
            classifier = PhoneGradeClassifier.from_pretrained(args.model, revision=args.revision, device=state.device)
    images = list_images(args.images)
    progress = None if not args.no_progress and state.is_main_process else False
    with state.split_between_processes(images) as share:
        records = prediction_records(classifier, share, args.batch_size, args.workers, progress)
        if state.num_processes > 1:
            # Shares are contiguous and gathered in process order, so the main process gets input order back.
            records = gather_object(list(records))
    if not state.is_main_process:
        return 0
    failures = write_records(records, classifier.labels, args.output, args.json)
    if state.num_processes > 1:
        print(f"graded {len(images)} images in {state.num_processes} processes", file=sys.stderr)
    return 1 if failures else 0
