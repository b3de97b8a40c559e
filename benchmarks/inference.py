"""Inference speed at 224 px: a plain eager torchvision loop against phonegrade's batched paths, per arch.

    .venv/bin/python benchmarks/inference.py                                   # every arch, then int8 accuracy
    .venv/bin/python benchmarks/inference.py --archs mobilenet_v2 resnet50

(a) baseline: model.eval(), torch.no_grad, one image at a time; PIL open → resize → tensor → normalise in the loop.
    torchvision's own model for resnet50 / mobilenet_v2 / densenet121; WearNet has none, so for the wearnet archs
    it is phonegrade's network run the same plain way.
(b) phonegrade: `phonegrade.inference.iter_probabilities` (what `phonegrade predict` and `PhoneGradeClassifier.predict`
    run) over the same JPEG files: batches (decoded in --workers DataLoader processes; 0 by default, the
    fastest on 2 cores), channels_last, inference_mode, with
        eager      the PyTorch model with BatchNorm folded into the layer before it (batches of --eager-batch-size)
        onnx       its fp32 ONNX export (`phonegrade export --format onnx`) on ONNX Runtime (--onnx-batch-size)
        onnx_int8  its static int8 ONNX export (`--int8`)
Each path: images/s over the whole set after a warm-up; p50 / p95 latency of single images (one image per call,
decoding included); FLOPs per image (torch.utils.flop_counter) × images/s against this CPU's fp32 peak.
Weights are random (`weights=None`): speed does not depend on their values.

Then int8 accuracy: a WearNet and a MobileNetV2 trained on 300 synthetic photos (--accuracy-epochs of the README's
from-scratch recipe), exported to int8 ONNX (calibrated on their training photos) and scored next
to fp32 on --accuracy-held-out other synthetic photos per class (600: with 3 % of predictions flipped either way,
a smaller set's accuracy difference is mostly sampling noise).
The last line printed is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from common import (  # puts phonegrade on sys.path
    ROOT,
    cpu_peak,
    load_average,
    peak_rss_mb,
    percentiles_ms,
    write_photos,
)
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from phonegrade import ARCHS, PhoneGradeClassifier, create_model
from phonegrade.exporting import ExportedClassifier, export, export_onnx, labelled_images, quantize_onnx
from phonegrade.inference import iter_probabilities
from phonegrade.models import BACKBONES
from phonegrade.transforms import IMAGENET_MEAN, IMAGENET_STD

SIZE = 224
LABELS = ["front", "back", "none"]


# ---------------------------------------------------------------- (a) the plain loop

def baseline_model(arch: str) -> torch.nn.Module:
    import torchvision

    if arch in BACKBONES:
        return getattr(torchvision.models, arch)(weights=None, num_classes=3).eval()
    return create_model(arch, 3).eval()


def run_baseline(model, paths: list[Path]) -> tuple[float, list[float]]:
    """(wall seconds, per-image seconds) of the textbook loop."""
    from torchvision import transforms

    transform = transforms.Compose([transforms.Resize((SIZE, SIZE)), transforms.ToTensor(),
                                    transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    seconds = []
    started = time.perf_counter()
    with torch.no_grad():
        for path in paths:
            start = time.perf_counter()
            pixels = transform(Image.open(path).convert("RGB")).unsqueeze(0)
            torch.softmax(model(pixels), dim=1)
            seconds.append(time.perf_counter() - start)
    return time.perf_counter() - started, seconds


# ---------------------------------------------------------------- (b) phonegrade

def run_batched(model, paths: list[Path], batch_size: int, workers: int) -> float:
    started = time.perf_counter()
    for _ in iter_probabilities(model, paths, batch_size, workers, channels_last=True, fold_batchnorm=True):
        pass
    return time.perf_counter() - started


def run_single(model, paths: list[Path]) -> list[float]:
    seconds = []
    for path in paths:
        start = time.perf_counter()
        list(iter_probabilities(model, [path], 1, 0, channels_last=True, fold_batchnorm=True))
        seconds.append(time.perf_counter() - start)
    return seconds


def flops_per_image(model) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, SIZE, SIZE))
    return counter.get_total_flops()


def measure_arch(arch: str, paths: list[Path], latency_paths: list[Path], args, peak_gflops: float,
                 workdir: Path) -> dict:
    def summary(images_per_s: float, latencies: list[float], flops: float) -> dict:
        return {"images_per_s": round(images_per_s, 2), **percentiles_ms(latencies),
                "utilisation": round(images_per_s * flops / 1e9 / peak_gflops, 4)}

    result = {"load_average_before": load_average()}
    baseline = baseline_model(arch)
    run_baseline(baseline, paths[:3])  # warm-up
    wall, per_image = run_baseline(baseline, paths)
    result["baseline_gflops_per_image"] = round(flops_per_image(baseline) / 1e9, 3)
    result["baseline"] = summary(len(paths) / wall, per_image[: len(latency_paths)],
                                 result["baseline_gflops_per_image"] * 1e9)
    del baseline

    torch.manual_seed(0)
    classifier = PhoneGradeClassifier({"task": "side", "arch": arch, "labels": LABELS, "image_size": SIZE}).eval()
    flops = flops_per_image(classifier)
    result["gflops_per_image"] = round(flops / 1e9, 3)
    calibration = torch.stack([classifier.transform(Image.open(p).convert("RGB")) for p in paths[:16]])
    export_onnx(classifier, workdir / f"{arch}.onnx", calibration[:2])
    quantize_onnx(workdir / f"{arch}.onnx", workdir / f"{arch}.int8.onnx", calibration)
    paths_b = {"eager": classifier, "onnx": ExportedClassifier(workdir / f"{arch}.onnx"),
               "onnx_int8": ExportedClassifier(workdir / f"{arch}.int8.onnx")}
    for name, model in paths_b.items():
        batch_size = args.eager_batch_size if name == "eager" else args.onnx_batch_size
        run_batched(model, paths[:batch_size], batch_size, 0)  # warm-up at the measured batch size
        run_single(model, latency_paths[:2])
        seconds = run_batched(model, paths, batch_size, args.workers)
        result[name] = summary(len(paths) / seconds, run_single(model, latency_paths), flops)
        result[name]["ratio"] = round(result[name]["images_per_s"] / result["baseline"]["images_per_s"], 2)
    best = max(paths_b, key=lambda name: result[name]["images_per_s"])
    best_fp32 = max(("eager", "onnx"), key=lambda name: result[name]["images_per_s"])
    result.update(best=best, ratio=result[best]["ratio"], best_fp32=best_fp32, ratio_fp32=result[best_fp32]["ratio"],
                  load_average_after=load_average())
    return result


# ---------------------------------------------------------------- int8 accuracy

def int8_accuracy(arch: str, workdir: Path, epochs: int, size: int, held_out_per_class: int) -> dict:
    """fp32 and int8 accuracy, and their top-1 agreement, of a model trained on synthetic photos, on other
    synthetic photos."""
    from phonegrade.synth import write_synthetic_dataset

    data, held_out, model_dir = workdir / "synth-train", workdir / "synth-held-out", workdir / f"model-{arch}"
    if not data.exists():
        write_synthetic_dataset("side", data, per_class=100, size=size, seed=0, progress=False)
        write_synthetic_dataset("side", held_out, per_class=held_out_per_class, size=size, seed=1, progress=False)
    subprocess.run([sys.executable, "-m", "phonegrade.cli", "train", "--task", "side", "--arch", arch,
                    "--weights", "none", "--data", str(data), "--output-dir", str(model_dir), "--epochs", str(epochs),
                    # the README's from-scratch recipe: int8 is for trained models (12 epochs of the old recipe left
                    # MobileNetV2 at 51 % accuracy, its logits near ties that any rounding flips)
                    "--image-size", str(size), "--lr", "2e-3", "--scheduler", "cosine", "--patience", "0",
                    "--batch-size", "16", "--gamma", "0",
                    "--workers", "1", "--no-progress"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    classifier = PhoneGradeClassifier.from_pretrained(model_dir)
    calibration, _, _ = labelled_images(classifier, str(data), "train", 200)
    paths = sorted(held_out.rglob("*.png"))
    truth = torch.tensor([LABELS.index(p.parent.name) for p in paths])

    def predictions(model) -> torch.Tensor:
        return torch.stack([row for row, _ in iter_probabilities(model, paths, 32)]).argmax(1)

    fp32 = predictions(classifier)
    result = {"images": len(paths), "image_size": size, "epochs": epochs,
              "fp32": round((fp32 == truth).float().mean().item(), 4)}
    for fmt in ("onnx",):  # int8 is ONNX only (phonegrade.exporting)
        int8 = predictions(ExportedClassifier(export(classifier, fmt, True, model_dir / f"model.int8.{fmt}",
                                                     calibration)))
        result[f"{fmt}_int8"] = round((int8 == truth).float().mean().item(), 4)
        result[f"{fmt}_int8_minus_fp32_pp"] = round(100 * (result[f"{fmt}_int8"] - result["fp32"]), 2)
        result[f"{fmt}_int8_top1_agreement"] = round((int8 == fp32).float().mean().item(), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="*", default=list(ARCHS), choices=ARCHS,
                        help="archs to time (none: only the int8 accuracy part)")
    parser.add_argument("--images", type=int, default=64, help="photos per throughput run")
    parser.add_argument("--latency-images", type=int, default=20, help="single-image calls per latency run")
    parser.add_argument("--photo-size", type=int, default=480, help="side of the synthetic JPEG photos")
    # Measured on 2 cores: PyTorch runs MobileNetV2 fastest in batches of 4 (larger batches fall out of cache),
    # ONNX Runtime in batches of 16; a DataLoader worker decoding beside 2 compute threads slows both down.
    parser.add_argument("--eager-batch-size", type=int, default=4)
    parser.add_argument("--onnx-batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the phonegrade paths")
    parser.add_argument("--accuracy-archs", nargs="*", default=["wearnet", "mobilenet_v2"])
    parser.add_argument("--accuracy-epochs", type=int, default=30)
    parser.add_argument("--accuracy-size", type=int, default=64)
    parser.add_argument("--accuracy-held-out", type=int, default=600, help="held-out synthetic photos per class")
    args = parser.parse_args()

    # PyTorch's TorchScript / torch.ao deprecation notices and ONNX Runtime's per-tensor quantiser notes, repeated
    # for every export, would bury the tables.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*(deprecated|might cause the trace to be incorrect).*")
    logging.getLogger().setLevel(logging.ERROR)
    started = time.time()
    cpu = cpu_peak()
    print(f"fp32 peak: {cpu['derivation']}; torch threads {torch.get_num_threads()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        paths = write_photos(workdir / "photos", args.images, args.photo_size)
        latency_paths = paths[: args.latency_images]
        archs = {}
        for arch in args.archs:
            archs[arch] = result = measure_arch(arch, paths, latency_paths, args, cpu["peak_gflops"], workdir)
            rows = [("baseline", result["baseline"])] + [(n, result[n]) for n in ("eager", "onnx", "onnx_int8")]
            print(f"\n{arch} ({result['gflops_per_image']} GFLOP/image, load {result['load_average_before']})")
            for name, row in rows:
                print(f"  {name:<10} {row['images_per_s']:>8.1f} img/s  p50 {row['p50_ms']:>7.1f} ms  "
                      f"p95 {row['p95_ms']:>7.1f} ms  utilisation {100 * row['utilisation']:>5.1f}%"
                      + (f"  ×{row['ratio']:.2f}" if "ratio" in row else ""), flush=True)
        accuracy = {}
        for arch in args.accuracy_archs:
            accuracy[arch] = int8_accuracy(arch, workdir, args.accuracy_epochs, args.accuracy_size,
                                          args.accuracy_held_out)
            print(f"\nint8 accuracy {arch}: {accuracy[arch]}", flush=True)

    targets = {
        "mobilenet_v2_ratio_ge_2": archs["mobilenet_v2"]["ratio"] >= 2 if "mobilenet_v2" in archs else None,
        "resnet50_ratio_ge_1.5": archs["resnet50"]["ratio"] >= 1.5 if "resnet50" in archs else None,
        "int8_within_1pp": all(abs(a[f"{fmt}_int8_minus_fp32_pp"]) <= 1 for a in accuracy.values()
                               for fmt in ("onnx",)) if accuracy else None,
    }
    print(json.dumps({"benchmark": "inference", "cpu": cpu, "torch_threads": torch.get_num_threads(),
                      "settings": {k: v for k, v in vars(args).items()}, "archs": archs, "int8_accuracy": accuracy,
                      "targets": targets, "peak_rss_mb": peak_rss_mb(), "seconds": round(time.time() - started)}))


if __name__ == "__main__":
    main()
