"""Batched inference over many images: `phonegrade predict`, and `PhoneGradeClassifier.predict` underneath.

    phonegrade predict --model OUT photos/ --output grades.csv
    accelerate launch --multi_gpu --num_processes 4 -m phonegrade.predict --model OUT photos/ --output grades.jsonl

Images are decoded and resized in DataLoader worker processes while the model runs whole batches in
channels_last layout under `torch.inference_mode`. Under `accelerate launch` (several processes, GPUs or
machines) each process grades a contiguous share of the images and the main process writes all results,
in input order.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image

from .data import IMAGE_EXTENSIONS, ImageLoadError, decode_side, load_image, undecoded_image_loaders
from .utils import accelerate_on_cpu

# Anything `load_image` reads, an already preprocessed C×H×W tensor, or a function returning what `load_image` reads.
ImageSource = str | os.PathLike | bytes | Image.Image | torch.Tensor | Callable[[], str | bytes | Image.Image]
OUTPUT_FORMATS = (".csv", ".jsonl")


class InferenceImages(torch.utils.data.Dataset):
    """Image sources → (pixels, error). An unreadable image gives zero pixels and its error message, so one
    bad file is reported instead of stopping a whole catalog."""

    def __init__(self, sources: Sequence[ImageSource], transform: Callable, image_size: int):
        self.sources = sources
        self.transform = transform
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        source = self.sources[index]
        if isinstance(source, torch.Tensor):
            return source, ""
        try:
            return self.transform(load_image(source() if callable(source) else source,
                                                 min_side=decode_side(self.image_size))), ""
        except ImageLoadError as err:
            return torch.zeros(3, self.image_size, self.image_size), str(err)


def image_sources(images) -> list[ImageSource]:
    """What `PhoneGradeClassifier.predict` accepts, as a flat list: one image, a sequence of images (N×C×H×W
    tensors count as N), or a `datasets.Dataset` with an image column."""
    if isinstance(images, (str, os.PathLike, bytes, Image.Image)):
        return [images]
    if isinstance(images, torch.Tensor):
        return list(images) if images.dim() == 4 else [images]
    if hasattr(images, "column_names"):  # a datasets.Dataset
        return undecoded_image_loaders(images)
    sources: list[ImageSource] = []
    for image in images:
        sources.extend(image if isinstance(image, torch.Tensor) and image.dim() == 4 else [image])
    return sources


def iter_probabilities(classifier, sources: Sequence[ImageSource], batch_size: int = 32, workers: int = 0,
                       progress: bool | None = False, channels_last: bool = False, fold_batchnorm: bool = False
                       ) -> Iterator[tuple[torch.Tensor | None, str]]:
    """(probabilities, "") or (None, error message) per source, in order.

    progress: a bar on stderr; None shows it only when stderr is a terminal.
    channels_last: run a PyTorch model in that layout (its weights are converted in place): convolutions run
    faster so on CPUs (oneDNN) and GPUs, and probabilities change in the last bits (about 1e-7).
    fold_batchnorm: run a PhoneGradeClassifier's `folded_net` (BatchNorm folded into the layer before it;
    probabilities change by about 1e-6); an exported file runs as it was exported.
    """
    from tqdm.auto import tqdm

    dataset = InferenceImages(sources, classifier.transform, classifier.image_size)
    workers = min(workers, -(-len(dataset) // batch_size))  # no idle worker processes for a handful of images
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                         pin_memory=classifier.device.type == "cuda")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if isinstance(classifier, torch.nn.Module):
        classifier.to(memory_format=memory_format)
    classifier.eval()
    foldable = fold_batchnorm and hasattr(classifier, "folded_net")
    network = classifier.folded_net().to(memory_format=memory_format) if foldable else classifier
    with tqdm(total=len(dataset), desc="predict", unit="img", leave=False,
              disable=None if progress is None else not progress) as bar:
        for pixels, errors in loader:
            # Entered per batch, not around the loop: a context held across `yield` would leak into the caller.
            with torch.inference_mode():
                pixels = pixels.to(classifier.device, memory_format=memory_format, non_blocking=True)
                probabilities = torch.softmax(network(pixels).float(), dim=1).cpu()
            for row, error in zip(probabilities, errors, strict=True):
                yield (None, error) if error else (row, "")
            bar.update(len(errors))


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model folder, Hub model id, or a .onnx / .torchscript.pt file from `phonegrade export`")
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


def process_state():
    """Accelerate's view of this process: its share of the work and its device."""
    from accelerate import PartialState

    return PartialState(cpu=accelerate_on_cpu())


def run(args: argparse.Namespace) -> int:
    """Grade every image; under `accelerate launch` each process takes a share. Exit status 1 if any image
    could not be read."""
    from accelerate.utils import gather_object

    from .export import ExportedClassifier, is_exported_file
    from .hub import PhoneGradeClassifier

    if args.output and Path(args.output).suffix not in OUTPUT_FORMATS:
        raise ValueError(f"--output must end in {' or '.join(OUTPUT_FORMATS)}: {args.output}")
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


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    return cli_main(["predict", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
