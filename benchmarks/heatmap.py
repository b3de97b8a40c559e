"""What the page's heatmap step costs after the grade, before and after it reused the grade.

    .venv/bin/python benchmarks/heatmap.py --output benchmarks/results/heatmap.json

The page grades an upload first and draws the heatmap as a second step. That step used to start over: decode the
upload, measure its quality, run the side model and the scratch model to choose what to explain, the scratch model
once more for the label, then Grad-CAM (`Grader.explain(image)`). Now it gets the grade just shown and only
decodes the upload and runs Grad-CAM (`Grader.explain(image, prediction=...)`). Both are timed here in one run on
the embedded default models, over synthetic 1600 px JPEG photos of all three side classes, each explained as the
page would (the scratch model for a photo called a front, the side model otherwise). p50 / p95 over
--images calls after a warm-up; the last line printed is one JSON object, also written to --output.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from common import load_average, percentiles_ms, write_photos  # puts phonegrade on sys.path

from phonegrade import DEFAULT_MODELS
from phonegrade.corrections import CorrectionStore
from phonegrade.grading import Grader, load_model
from phonegrade.quality import measure_quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=30, help="timed calls per path")
    parser.add_argument("--photo-size", type=int, default=1600)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        grader = Grader(load_model(DEFAULT_MODELS["side"]), load_model(DEFAULT_MODELS["scratch"]),
                        CorrectionStore(Path(tmp) / "corrections"))
        paths = write_photos(Path(tmp) / "photos", 9, args.photo_size)
        graded = {path: grader.assess(grader.read_upload(path)) for path in paths}

        def before(path):
            image = grader.read_upload(path)
            if not measure_quality(image).too_poor_to_grade:
                grader.explain(image)

        def after(path):
            grader.explain(grader.read_upload(path), prediction=graded[path].prediction)

        timings = {}
        for name, step in (("before", before), ("after", after)):
            for path in paths:  # warm-up
                step(path)
            seconds = []
            for i in range(args.images):
                path = paths[i % len(paths)]
                started = time.perf_counter()
                step(path)
                seconds.append(time.perf_counter() - started)
            timings[name] = percentiles_ms(seconds)
    ratio = round(timings["before"]["p50_ms"] / timings["after"]["p50_ms"], 2)
    print(f"heatmap step p50: before {timings['before']['p50_ms']} ms, after {timings['after']['p50_ms']} ms "
          f"(×{ratio} faster)")
    summary = {"benchmark": "heatmap", "settings": {"images": args.images, "photo_size": args.photo_size},
               "torch_threads": torch.get_num_threads(), "load_average_before": load_before, **timings,
               "speedup_p50": ratio}
    if args.output:
        args.output.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
