"""The capture-quality thresholds of `phonegrade.quality`, measured on real photos and on degraded copies of them.

    python benchmarks/quality_thresholds.py                    # the photos under ../shared/data (beside the checkout)
    python benchmarks/quality_thresholds.py --data DIR --output benchmarks/results/quality_thresholds.json

Every photo under DIR/<set>/<class>/ is measured as it is ("good": the development photos are usable, so a warning
on one is a false alarm) and as degraded copies: blurred by a Gaussian of 3 and 6 px at the analysis size (512 px
on the long side, so the radius grows with the photo), blurred by 3 px at the photo's own resolution (for large
photos less than a pixel at the analysis size: a blur the models hardly see), darkened ×0.15, over-exposed ×3
and shrunk to 100 px on the long side. Prints each measure's percentiles per set, how many photos candidate
thresholds would flag, and what the thresholds in phonegrade/quality.py flag; the last line is one JSON object,
also written to --output. About 3 minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import ROOT  # puts phonegrade on sys.path
from PIL import Image, ImageFilter

from phonegrade import quality
from phonegrade.images import IMAGE_EXTENSIONS, load_image

PERCENTILES = (0, 1, 2, 5, 10, 25, 50, 75, 90, 95, 98, 99, 100)
# Each measure, which way is bad, and candidate thresholds (the chosen one among them).
MEASURES = {
    "sharpness": ("below", (5, 10, 15, 20, 30, 40)),
    "glare": ("above", (0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8)),
    "darkness": ("above", (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.96)),
    "short_side": ("below", (100, 128, 160, 192, 224)),
}
# The degraded copy each measure should catch, and the warning it should get (a word of the sentence).
TARGETS = {"sharpness": ("blur_3px", "blurry"), "glare": ("overexposed_x3", "glare"),
           "darkness": ("darkened_x0.15", "dark"), "short_side": ("shrunk_100px", "small")}
MEASURE_OF_WARNING = {"blurry": "sharpness", "glare": "glare", "dark": "darkness", "small": "short_side"}


def scale_pixels(image: Image.Image, factor: float) -> Image.Image:
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) * factor, 0, 255).astype(np.uint8))


def degraded_copies(image: Image.Image) -> dict[str, Image.Image]:
    to_analysis = max(1.0, max(image.size) / quality.ANALYSIS_SIDE)  # 1 px at the analysis size, in photo pixels
    shrink = 100 / max(image.size)
    return {
        "blur_3px": image.filter(ImageFilter.GaussianBlur(3 * to_analysis)),
        "blur_6px": image.filter(ImageFilter.GaussianBlur(6 * to_analysis)),
        "blur_3px_full_resolution": image.filter(ImageFilter.GaussianBlur(3)),
        "darkened_x0.15": scale_pixels(image, 0.15),
        "overexposed_x3": scale_pixels(image, 3),
        "shrunk_100px": image.resize((max(1, round(image.width * shrink)), max(1, round(image.height * shrink))),
                                     Image.Resampling.BILINEAR),
    }


def middle_brightness(image: Image.Image) -> float:
    """Mean luminance (0..1) of the central half across and down: ×3 leaves a dark middle unclipped."""
    grey = np.asarray(quality.analysis_copy(image).convert("L"), dtype=np.float64) / 255
    h, w = grey.shape
    return float(grey[h // 4: h - h // 4, w // 4: w - w // 4].mean())


def flagged(values: np.ndarray, way: str, threshold: float) -> float:
    return float((values < threshold).mean() if way == "below" else (values > threshold).mean())


def share(reports: list[quality.QualityReport], word: str | None = None) -> float:
    """Share of reports with a warning containing `word` (any warning when None)."""
    return float(np.mean([any(word is None or word in w for w in r.warnings) for r in reports]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "quality_thresholds.json")
    args = parser.parse_args()

    paths = sorted(p for p in args.data.glob("*/*/*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise SystemExit(f"no photos under {args.data}/<set>/<class>/")
    start = time.perf_counter()
    reports: dict[str, list[quality.QualityReport]] = {"good": []}
    brightness = []
    for path in paths:
        image = load_image(path)
        reports["good"].append(quality.measure_quality(image))
        brightness.append(middle_brightness(image))
        for name, copy in degraded_copies(image).items():
            reports.setdefault(name, []).append(quality.measure_quality(copy))
    seconds = time.perf_counter() - start
    sets = {path.relative_to(args.data).parts[0] for path in paths}
    print(f"{len(paths)} photos ({', '.join(sorted(sets))}) and {len(reports) - 1} degraded copies of each, "
          f"measured in {seconds:.0f} s")

    values = {name: {m: np.array([getattr(r, m) for r in rs], dtype=np.float64) for m in MEASURES}
              for name, rs in reports.items()}
    distributions = {}
    for measure in MEASURES:
        print(f"\n{measure} percentiles {list(PERCENTILES)}")
        distributions[measure] = {}
        for name in reports:
            cuts = np.percentile(values[name][measure], PERCENTILES)
            distributions[measure][name] = [round(float(c), 4) for c in cuts]
            print(f"  {name:26s} " + " ".join(f"{c:9.4g}" for c in cuts))

    candidates = {}
    print("\nshare flagged by candidate thresholds (good photos: false alarms)")
    for measure, (way, thresholds) in MEASURES.items():
        target = TARGETS[measure][0]
        candidates[measure] = []
        for threshold in thresholds:
            row = {"threshold": threshold, "flags": way,
                   **{name: round(flagged(values[name][measure], way, threshold), 4) for name in reports}}
            candidates[measure].append(row)
            print(f"  {measure} {way} {threshold:<5}  good {row['good']:.3f}  {target} {row[target]:.3f}")

    chosen = {"MIN_SHARPNESS": quality.MIN_SHARPNESS, "MAX_GLARE": quality.MAX_GLARE,
              "MAX_DARKNESS": quality.MAX_DARKNESS, "BLACK_DARKNESS": quality.BLACK_DARKNESS,
              "MIN_SHORT_SIDE": quality.MIN_SHORT_SIDE, "MIN_GRADABLE_SIDE": quality.MIN_GRADABLE_SIDE}
    warned = {name: {"any": round(share(rs), 4), **{word: round(share(rs, word), 4) for word in MEASURE_OF_WARNING},
                     "too_poor_to_grade": round(float(np.mean([r.too_poor_to_grade for r in rs])), 4)}
              for name, rs in reports.items()}
    print(f"\nwarnings from phonegrade/quality.py ({', '.join(f'{k} {v}' for k, v in chosen.items())})")
    for name, row in warned.items():
        print(f"  {name:26s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    sets_warned = {name: round(share([r for p, r in zip(paths, reports["good"], strict=True)
                                      if p.relative_to(args.data).parts[0] == name]), 4) for name in sorted(sets)}
    print(f"  good photos with a warning, by set: {sets_warned}")
    false_alarms = [{"photo": str(path.relative_to(args.data)),
                     "warnings": [word for word in MEASURE_OF_WARNING if share([r], word)]}
                    for path, r in zip(paths, reports["good"], strict=True) if r.warnings]
    print(f"\ngood photos with a warning: {len(false_alarms)} of {len(paths)}")
    for alarm in false_alarms:
        print(f"  {alarm['photo']}: {', '.join(alarm['warnings'])}")

    # Over-exposing a photo whose middle is dark (lab photos of black screens) gives a normally exposed photo.
    brightness = np.array(brightness)
    glare_warned = np.array([any("glare" in w for w in r.warnings) for r in reports["overexposed_x3"]])
    by_brightness = []
    print("\noverexposed_x3 copies with the glare warning, by the original's middle brightness")
    for low, high in ((0, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.6), (0.6, 1.01)):
        in_bin = (brightness >= low) & (brightness < high)
        row = {"middle_brightness": [low, min(high, 1.0)], "photos": int(in_bin.sum()),
               "glare_warning": round(float(glare_warned[in_bin].mean()), 4) if in_bin.any() else None}
        by_brightness.append(row)
        print(f"  {low:.1f}-{min(high, 1.0):.1f}: {row['photos']:3d} photos, {row['glare_warning']}")

    summary = {"benchmark": "quality_thresholds", "photos": len(paths), "sets": sorted(sets),
               "seconds": round(seconds, 1), "analysis_side": quality.ANALYSIS_SIDE, "thresholds": chosen,
               "warned": warned, "good_warned_by_set": sets_warned, "false_alarms": false_alarms,
               "overexposed_x3_by_middle_brightness": by_brightness,
               "percentiles": list(PERCENTILES), "distributions": distributions, "candidates": candidates}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
