"""Frozen-backbone fine-tuning: seconds per epoch of phonegrade against a plain training loop, on one fixed
synthetic set at 224 px.

    .venv/bin/python benchmarks/train.py                        # mobilenet_v2 and resnet50
    .venv/bin/python benchmarks/train.py --archs mobilenet_v2 --epochs 4

For each arch (random `weights=None` backbones, frozen as phonegrade freezes pretrained ones: MobileNetV2 trains
its top 5 of 19 blocks, ResNet50 its layer4), three runs, each in its own process, over the same images with the
same batch size, DataLoader workers and epochs, no augmentation:
    plain     benchmarks/plain_loop.py: every epoch pushes every image through the whole network
    phonegrade         `phonegrade train --no-augment`: the frozen blocks run without autograd
    phonegrade_cached  `phonegrade train --no-augment --cache-features`: the frozen blocks run once, before the
                       first epoch; that time is counted, spread over the epochs
seconds per epoch (training + validation; phonegrade's from its training log), the ratio plain / phonegrade,
and each process's peak RSS. The last line printed is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, load_average, peak_rss_mb  # puts phonegrade on sys.path

from phonegrade.synth import write_synthetic_dataset

TRAINABLE_BLOCKS = {"mobilenet_v2": 5, "resnet50": 1}


def run_process(command: list[str]) -> tuple[str, float]:
    """stdout and peak RSS (MB) of one process (with its DataLoader workers, the largest of them)."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{command} failed ({process.returncode}):\n{stdout}")
    return stdout, round(usage.ru_maxrss / 1024, 1)


def run_plain(arch: str, data: Path, args) -> dict:
    stdout, rss = run_process([sys.executable, str(ROOT / "benchmarks" / "plain_loop.py"), "--data", str(data),
                               "--arch", arch, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                               "--workers", str(args.workers)])
    seconds = json.loads(stdout.splitlines()[-1])["epoch_seconds"]
    return {"epoch_seconds": [round(s, 2) for s in seconds], "seconds_per_epoch": round(sum(seconds) / len(seconds), 3),
            "peak_rss_mb": rss}


def run_phonegrade(arch: str, data: Path, out: Path, args, cached: bool) -> dict:
    stdout, rss = run_process([
        sys.executable, str(ROOT / "phonegrade" / "train.py"), "--task", "side", "--arch", arch, "--weights", "none",
        "--trainable-blocks", str(TRAINABLE_BLOCKS[arch]), "--data", str(data), "--output-dir", str(out),
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--workers", str(args.workers),
        "--image-size", "224", "--no-augment", "--scheduler", "none", "--patience", "0", "--no-progress",
        *(["--cache-features"] if cached else [])])
    epochs = [json.loads(line)["seconds"] for line in (out / "training_log.jsonl").read_text().splitlines()]
    caching = float(re.search(r"images in ([\d.]+)s", stdout).group(1)) if cached else 0.0
    return {"epoch_seconds": epochs, "cache_seconds": caching,
            "seconds_per_epoch": round((caching + sum(epochs)) / len(epochs), 3),
            "steady_seconds_per_epoch": round(sum(epochs[1:]) / (len(epochs) - 1), 3), "peak_rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=sorted(TRAINABLE_BLOCKS), choices=sorted(TRAINABLE_BLOCKS))
    parser.add_argument("--per-class", type=int, default=50, help="synthetic photos per class (80%% train)")
    parser.add_argument("--photo-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    started = time.time()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_synthetic_dataset("side", data, per_class=args.per_class, size=args.photo_size, seed=0, progress=False)
        for arch in args.archs:
            result = {"load_average_before": load_average(), "plain": run_plain(arch, data, args)}
            for name, cached in (("phonegrade", False), ("phonegrade_cached", True)):
                result[name] = run_phonegrade(arch, data, Path(tmp) / f"{arch}-{name}", args, cached)
                plain = result["plain"]["seconds_per_epoch"]
                result[name]["ratio"] = round(plain / result[name]["seconds_per_epoch"], 2)
            result["load_average_after"] = load_average()
            results[arch] = result
            print(f"\n{arch} (load {result['load_average_before']})")
            for name in ("plain", "phonegrade", "phonegrade_cached"):
                row = result[name]
                print(f"  {name:<18} {row['seconds_per_epoch']:>7.2f} s/epoch  peak RSS {row['peak_rss_mb']:>7.0f} MB"
                      + (f"  ×{row['ratio']:.2f}" if "ratio" in row else ""), flush=True)

    targets = {f"{arch}_cached_ratio_ge_2": results[arch]["phonegrade_cached"]["ratio"] >= 2 for arch in results}
    print(json.dumps({"benchmark": "train", "settings": vars(args), "archs": results, "targets": targets,
                      "peak_rss_mb": peak_rss_mb(), "seconds": round(time.time() - started)}))


if __name__ == "__main__":
    main()
