"""What a leave-one-group-out cross-validation says beyond its accuracy: flip test-time augmentation, photos of
other folders, and calibration, all on photos of sources the fold models never saw (the ask-when-unsure margin on
the same predictions: benchmarks/ask_margin.py).

    python benchmarks/heldout_sources.py --crossval runs/side-loso --also SCRATCH_DIR=front \
        --output benchmarks/results/side_heldout_sources.json

--crossval is a `phonegrade crossval --group-by ...` output folder. For each fold model and the photos of the group
it held out, this computes:
- the pooled figures as the run recorded them, and again with flip test-time augmentation (the mean of the
  probabilities of the photo and its mirror image);
- calibration (`phonegrade.calibration.calibration_report`): the expected calibration error of the out-of-fold
  probabilities, and again after temperature scaling, each group's photos scaled by the temperature fitted on the
  other groups' photos only; and the temperature fitted on every photo (what `train --calibrate-from` uses);
--also DIR=LABEL grades every photo under DIR with every fold model (none of them trained on it, unless the run
had it as --extra-train) and reports the share graded LABEL, per fold model and per source group of DIR.
The last line printed is the JSON object, also written to --output.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python benchmarks/x.py` from a checkout

from phonegrade.calibration import calibration_report  # noqa: E402
from phonegrade.classifier import PhoneGradeClassifier  # noqa: E402
from phonegrade.crossvalidation import pooled_figures  # noqa: E402
from phonegrade.data import extra_training_samples, parse_source, read_label_column  # noqa: E402
from phonegrade.images import load_image  # noqa: E402
from phonegrade.transforms import decode_side, eval_transform  # noqa: E402


def probabilities(classifier: PhoneGradeClassifier, paths: list[str], flip: bool) -> torch.Tensor:
    """N × labels probabilities; with `flip`, the mean over the photo and its mirror image."""
    transform = eval_transform(classifier.config.preprocessing)
    min_side = decode_side(classifier.image_size)
    out = []
    with torch.no_grad():
        for start in range(0, len(paths), 32):
            pixels = torch.stack([transform(load_image(p, min_side=min_side)) for p in paths[start:start + 32]])
            p = torch.softmax(classifier(pixels), -1)
            if flip:
                p = (p + torch.softmax(classifier(pixels.flip(-1)), -1)) / 2
            out.append(p)
    return torch.cat(out)


def rows_with(rows: list[dict], labels: list[str], probs: torch.Tensor) -> list[dict]:
    return [{**r, "predicted": labels[int(p.argmax())], **{f"p_{label}": float(v) for label, v in zip(labels, p,
                                                                                                       strict=True)}}
            for r, p in zip(rows, probs, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crossval", type=Path, required=True, help="a `phonegrade crossval --group-by` folder")
    parser.add_argument("--also", nargs="*", default=[], metavar="DIR=LABEL",
                        help="grade every photo under DIR with every fold model: the share graded LABEL")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    summary = json.loads((args.crossval / "crossval.json").read_text())
    with open(args.crossval / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = summary["labels"]
    by_fold = defaultdict(list)
    for r in rows:
        by_fold[(r["seed"], r["fold"])].append(r)
    flipped, also = [], defaultdict(list)
    extra = {}
    for spec in args.also:
        samples, _ = extra_training_samples(spec, summary["task"])
        extra[spec] = (samples, [parse_source(spec)[0]] * len(samples))
    for (seed, fold), fold_rows in sorted(by_fold.items()):
        classifier = PhoneGradeClassifier.from_pretrained(args.crossval / f"fold-{seed}-{fold}").eval()
        flipped += rows_with(fold_rows, labels, probabilities(classifier, [r["image"] for r in fold_rows], True))
        for spec, (samples, origins) in extra.items():
            wanted = spec.rpartition("=")[2]
            predicted = probabilities(classifier, [s.key for s in samples], False).argmax(-1).tolist()
            groups = read_label_column(samples, origins, "source_repo", required=False)
            right = [labels[p] == wanted for p in predicted]
            per_group = {g: round(sum(r for r, h in zip(right, groups, strict=True) if h == g) / groups.count(g), 4)
                         for g in sorted(set(groups))}
            also[f"{Path(origins[0]).name}={wanted}"].append({  # named by folder: no path of this machine
                "fold": f"{seed}-{fold}", "held_out": fold_rows[0].get("group"),
                "share": round(sum(right) / len(right), 4), "per_group": per_group})
        print(f"fold {seed}-{fold} done", flush=True)
    group = "group" if "group" in rows[0] else "fold"
    results = {"crossval": args.crossval.name, "photos": len(rows),
               "as_recorded": {"pooled": pooled_figures(rows, labels),
                               "per_group": {g: pooled_figures([r for r in rows if r[group] == g], labels)
                                             for g in sorted({r[group] for r in rows})}},
               "flip_tta": {"pooled": pooled_figures(flipped, labels),
                            "per_group": {g: pooled_figures([r for r in flipped if r[group] == g], labels)
                                          for g in sorted({r[group] for r in flipped})}},
               "calibration": calibration_report(rows, labels, group),
               "also": dict(also)}
    for name in ("as_recorded", "flip_tta"):
        p = results[name]["pooled"]
        print(f"{name:12} accuracy {p['accuracy']:.3f}  recall "
              + "  ".join(f"{label} {r:.3f}" for label, r in p["recall"].items()))
    c = results["calibration"]
    print(f"ECE {c['ece']:.3f} -> {c['ece_scaled']:.3f} temperature-scaled, each group by the others' temperature "
          f"(on all photos: T = {c['temperature']})")
    for spec, folds in results["also"].items():
        print(f"{spec}: " + ", ".join(f"fold {f['fold']} {f['share']:.3f}" for f in folds))
    print(json.dumps(results))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
