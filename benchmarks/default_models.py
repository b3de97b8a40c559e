"""Per-image latency of the demo's default models (`phonegrade.DEFAULT_MODELS`) on this CPU.

    .venv/bin/python benchmarks/default_models.py
    .venv/bin/python benchmarks/default_models.py --photo-size 3000 --images 30

For each default model: single-image calls of `PhoneGradeClassifier.predict([path], fold_batchnorm=True)`, what
the demo does for an upload, over phone-camera-sized JPEG photos (decode, resize and the network included), and
of the network alone (`folded_net()`) on one preprocessed image. p50 / p95 over --images calls after a warm-up.
Targets: p50 at most 30 ms per photo for the side model and 60 ms for the scratch model, and each model's weights
at most 20 MB. Also the preprocessing of one photo with phonegrade's reduced decoding (JPEG decoded at 1/2 to 1/8
scale, then a whole-factor box shrink) against a full-size decode and one resize, as a ratio; and the demo's
capture-quality check (`phonegrade.quality.measure_quality`) of a decoded 1280 × 720 and 4000 × 3000 photo. The last
line printed is one JSON object, also written to --output.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from common import ROOT, load_average, peak_rss_mb, percentiles_ms, write_photos  # puts phonegrade on sys.path

from phonegrade import DEFAULT_MODELS, PhoneGradeClassifier
from phonegrade.images import load_image
from phonegrade.quality import measure_quality
from phonegrade.transforms import decode_side, photo_tensor

TARGET_MS = {"side": 30, "scratch": 60}
TARGET_MB = 20


def timed_calls(call, count: int) -> list[float]:
    call()  # warm-up: first-call allocations and kernel selection
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


@torch.inference_mode()
def measure(task: str, paths: list[Path], count: int) -> dict:
    model = PhoneGradeClassifier.from_pretrained(DEFAULT_MODELS[task])
    photos = iter(paths * (count // len(paths) + 2))
    end_to_end = timed_calls(lambda: model.predict([next(photos)], fold_batchnorm=True), count)
    pixels = model.preprocess([paths[0]])
    folded = model.folded_net()
    network = timed_calls(lambda: folded(pixels), count)
    # The same transform without the shrink step, on a full-size decode: what preprocessing cost before.
    full_size = torchvision.transforms.v2.Compose([
        torchvision.transforms.v2.PILToTensor() if getattr(t, "func", None) is photo_tensor else t
        for t in model.transform.transforms])
    reduced = timed_calls(lambda: model.transform(load_image(paths[0], min_side=decode_side(model.image_size))), count)
    full = timed_calls(lambda: full_size(load_image(paths[0])), count)
    preprocess_reduced, preprocess_full_size = percentiles_ms(reduced), percentiles_ms(full)
    folder = Path(DEFAULT_MODELS[task])
    return {"model": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else folder.name,
            "arch": model.arch, "image_size": model.image_size,
            "parameters": sum(p.numel() for p in model.parameters()),
            "weights_mb": round((folder / "model.safetensors").stat().st_size / 1e6, 2) if folder.is_dir() else None,
            "predict_one_photo": percentiles_ms(end_to_end), "network_only": percentiles_ms(network),
            "preprocess_reduced": preprocess_reduced, "preprocess_full_size": preprocess_full_size,
            "preprocess_speedup": round(preprocess_full_size["p50_ms"] / preprocess_reduced["p50_ms"], 2)}


def quality_check(path: Path, count: int) -> dict:
    """p50 / p95 of the quality check of one decoded photo, at a webcam's and a 12-megapixel phone's size."""
    photo = load_image(path)
    return {f"{w}x{h}": percentiles_ms(timed_calls(lambda image=photo.resize((w, h)): measure_quality(image), count))
            for w, h in ((1280, 720), (4000, 3000))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50, help="timed calls per measurement")
    parser.add_argument("--photo-size", type=int, default=1600, help="side of the JPEG photos (a phone photo is "
                                                                      "about 3000-4000 px; uploads are often resized)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    started = time.time()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp), 10, args.photo_size)
        results = {task: measure(task, paths, args.images) for task in DEFAULT_MODELS}
        quality = quality_check(paths[0], min(args.images, 20))
    for task, r in results.items():
        print(f"{task:<8} {r['arch']} at {r['image_size']} px, {r['parameters']:,} parameters, {r['weights_mb']} MB: "
              f"predict one {args.photo_size} px JPEG p50 {r['predict_one_photo']['p50_ms']} ms "
              f"p95 {r['predict_one_photo']['p95_ms']} ms; network only p50 {r['network_only']['p50_ms']} ms; "
              f"preprocessing p50 {r['preprocess_full_size']['p50_ms']} ms full-size → "
              f"{r['preprocess_reduced']['p50_ms']} ms reduced (×{r['preprocess_speedup']})")
    print("quality check " + ", ".join(f"{size} p50 {r['p50_ms']} ms" for size, r in quality.items()))
    targets = {}
    for task, r in results.items():
        targets[f"{task}_p50_le_{TARGET_MS[task]}ms"] = r["predict_one_photo"]["p50_ms"] <= TARGET_MS[task]
        targets[f"{task}_weights_le_{TARGET_MB}mb"] = r["weights_mb"] is not None and r["weights_mb"] <= TARGET_MB
    summary = {"benchmark": "default_models", "settings": {"images": args.images, "photo_size": args.photo_size},
               "torch_threads": torch.get_num_threads(), "load_average_before": load_before, "models": results,
               "quality_check": quality, "targets": targets, "peak_rss_mb": peak_rss_mb(),
               "seconds": round(time.time() - started)}
    if args.output:
        args.output.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
