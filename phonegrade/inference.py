"""Inference, one way for every caller: `PhoneGradeClassifier.predict`, `phonegrade predict`, evaluation and the
check of an exported file all run `iter_probabilities`.

Images are decoded and resized in DataLoader worker processes (or the calling one) while the network runs whole
batches under `torch.inference_mode`; an unreadable image gives its error message in place of probabilities, so one
bad file is reported instead of stopping a whole catalog.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import torch
from PIL import Image

from .data import Sample, undecoded_image_loaders
from .errors import ImageLoadError
from .transforms import load_photo

# Anything `load_image` reads, an already preprocessed C×H×W tensor, or a function returning what `load_image` reads.
ImageSource = str | os.PathLike | bytes | Image.Image | torch.Tensor | Callable[[], str | bytes | Image.Image]


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
            return self.transform(load_photo(source() if callable(source) else source, self.image_size)), ""
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


def in_layout(network, memory_format: torch.memory_format):
    """`network` with its weights in `memory_format` (converted in place, and only when they are not already)."""
    if isinstance(network, torch.nn.Module) and getattr(network, "_phonegrade_layout", None) != memory_format:
        network.to(memory_format=memory_format)
        network._phonegrade_layout = memory_format
    return network


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
    if getattr(classifier, "training", True):
        classifier.eval()  # walks every module: only when needed, as a single photo's prediction is a few ms
    in_layout(classifier, memory_format)
    foldable = fold_batchnorm and hasattr(classifier, "folded_net")
    network = in_layout(classifier.folded_net(), memory_format) if foldable else classifier
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


def probabilities_or_raise(classifier, sources: Sequence[ImageSource], batch_size: int = 32, workers: int = 0,
                          progress: bool | None = False, **options) -> torch.Tensor:
    """N × labels probabilities of `sources`, as `iter_probabilities` gives them; the first unreadable image
    raises ImageLoadError."""
    rows = []
    for row, error in iter_probabilities(classifier, sources, batch_size, workers, progress, **options):
        if error:
            raise ImageLoadError(error)
        rows.append(row)
    return torch.stack(rows) if rows else torch.empty(0, len(classifier.labels))


def evaluate_samples(classifier, samples: Sequence[Sample], batch_size: int = 32, workers: int = 0,
                     progress: bool | None = False) -> tuple[list[int], list[int]]:
    """True and predicted label indices of labelled `samples`."""
    probabilities = probabilities_or_raise(classifier, [s.load for s in samples], batch_size, workers, progress)
    return [s.label for s in samples], probabilities.argmax(dim=1).tolist()


def compare(original, exported, pixels: torch.Tensor, labels: torch.Tensor, batch_size: int = 16) -> dict:
    """Top-1 agreement of two classifiers (a model and its export) on the same preprocessed pixels, the largest
    absolute difference in any class probability, and both accuracies."""
    ours = probabilities_or_raise(original, list(pixels), batch_size)
    theirs = probabilities_or_raise(exported, list(pixels), batch_size)
    return {
        "images": len(labels),
        "top1_agreement": (ours.argmax(1) == theirs.argmax(1)).float().mean().item(),
        "max_probability_difference": (ours - theirs).abs().max().item(),
        "accuracy_original": (ours.argmax(1) == labels).float().mean().item(),
        "accuracy_exported": (theirs.argmax(1) == labels).float().mean().item(),
    }
