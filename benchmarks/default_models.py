"""Per-image latency of the demo's default models (`phonegrade.DEFAULT_MODELS`) on this CPU.

    .venv/bin/python benchmarks/default_models.py
    .venv/bin/python benchmarks/default_models.py --photo-size 3000 --images 30

For each default model: single-image calls of `PhoneGradeClassifier.predict([path])`, what the demo does for an
upload, over phone-camera-sized JPEG photos (decode, resize and the network included), and of the network alone
on one preprocessed image. p50 / p95 over --images calls after a warm-up. Target (issue 6): the side model at
most 30 ms per image. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from common import load_average, peak_rss_mb, percentiles_ms, write_photos  # puts phonegrade on sys.path
from phonegrade import DEFAULT_MODELS, PhoneGradeClassifier

TARGET_MS = 30


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
    end_to_end = timed_calls(lambda: model.predict([next(photos)]), count)
    pixels = model.preprocess([paths[0]])
    network = timed_calls(lambda: model(pixels), count)
    return {"model": DEFAULT_MODELS[task], "arch": model.arch, "image_size": model.image_size,
            "parameters": sum(p.numel() for p in model.parameters()),
            "weights_mb": round((Path(DEFAULT_MODELS[task]) / "model.safetensors").stat().st_size / 1e6, 2)
            if Path(DEFAULT_MODELS[task]).is_dir() else None,
            "predict_one_photo": percentiles_ms(end_to_end), "network_only": percentiles_ms(network)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50, help="timed calls per measurement")
    parser.add_argument("--photo-size", type=int, default=1600, help="side of the JPEG photos (a phone photo is "
                                                                      "about 3000-4000 px; uploads are often resized)")
    args = parser.parse_args()
    started = time.time()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp), 10, args.photo_size)
        results = {task: measure(task, paths, args.images) for task in DEFAULT_MODELS}
    for task, r in results.items():
        print(f"{task:<8} {r['arch']} at {r['image_size']} px, {r['parameters']:,} parameters, {r['weights_mb']} MB: "
              f"predict one {args.photo_size} px JPEG p50 {r['predict_one_photo']['p50_ms']} ms "
              f"p95 {r['predict_one_photo']['p95_ms']} ms; network only p50 {r['network_only']['p50_ms']} ms")
    side = results["side"]["predict_one_photo"]["p50_ms"]
    print(json.dumps({"benchmark": "default_models", "settings": vars(args), "torch_threads": torch.get_num_threads(),
                      "load_average_before": load_before, "models": results,
                      "targets": {f"side_p50_le_{TARGET_MS}ms": side <= TARGET_MS},
                      "peak_rss_mb": peak_rss_mb(), "seconds": round(time.time() - started)}))


if __name__ == "__main__":
    main()
