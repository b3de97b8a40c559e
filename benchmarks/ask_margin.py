"""How often the demo would ask the uploader to confirm a grade, and how many wrong grades that catches, per margin.

    python benchmarks/ask_margin.py side=runs/side-default-loso/predictions.csv@1.25 \
        scratch=runs/scratch-default-loso/predictions.csv --output benchmarks/results/ask_margin.json

Each TASK=CSV is a cross-validation `predictions.csv` (`phonegrade crossval`: columns seed, fold, image, label,
predicted, p_<label>...), holding every development photo's out-of-fold probabilities: best a leave-one-group-out
run's, photos of sources the fold model never saw, as the demo meets them. The demo asks when the
top two probabilities are closer than the margin. For each candidate margin this prints the share of photos that
would be asked about, the error rate among asked and not-asked photos, and the share of all errors asked about;
the last line is one JSON object, also written to --output.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python benchmarks/x.py` from a checkout

import torch  # noqa: E402

from phonegrade.calibration import scale_probabilities  # noqa: E402
from phonegrade.confidence import top_two_margin  # noqa: E402

CANDIDATES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)


def read_predictions(path: Path, temperature: float = 1.0) -> list[dict]:
    """Per row: the true label, the predicted one and the top-two margin (`phonegrade.confidence`), of the
    probabilities scaled by `temperature` as a model calibrated with it gives them (`train --calibrate-from`)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    labels = [k.removeprefix("p_") for k in rows[0] if k.startswith("p_")]
    probabilities = scale_probabilities(torch.tensor([[float(r[f"p_{label}"]) for label in labels] for r in rows],
                                                     dtype=torch.float64), temperature)
    return [{"label": row["label"], "predicted": row["predicted"],
             "margin": top_two_margin(dict(zip(labels, p.tolist(), strict=True)))}
            for row, p in zip(rows, probabilities, strict=True)]


def at_margin(rows: list[dict], margin: float) -> dict:
    asked = [r for r in rows if r["margin"] < margin]  # the demo's rule, `confidence.unsure`
    kept = [r for r in rows if r["margin"] >= margin]
    errors = sum(r["label"] != r["predicted"] for r in rows)
    asked_errors = sum(r["label"] != r["predicted"] for r in asked)
    kept_errors = errors - asked_errors
    return {"margin": margin, "asked": len(asked), "asked_share": round(len(asked) / len(rows), 4),
            "error_rate_asked": round(asked_errors / len(asked), 4) if asked else None,
            "error_rate_not_asked": round(kept_errors / len(kept), 4) if kept else None,
            "errors_asked_share": round(asked_errors / errors, 4) if errors else None}


def measure(path: Path, temperature: float = 1.0) -> dict:
    rows = read_predictions(path, temperature)
    errors = sum(r["label"] != r["predicted"] for r in rows)
    return {"predictions": str(path), "temperature": temperature, "photos": len(rows), "errors": errors,
            "error_rate": round(errors / len(rows), 4), "margins": [at_margin(rows, m) for m in CANDIDATES]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", nargs="+", metavar="TASK=CSV[@T]",
                        help="a task and its predictions.csv; @T: scale the probabilities by temperature T, as the "
                             "model calibrated with it (config.json training.calibration) gives them")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    results = {}
    for item in args.predictions:
        task, _, spec = item.partition("=")
        path, _, temperature = spec.partition("@")
        results[task] = measure(Path(path), float(temperature or 1.0))
        r = results[task]
        print(f"\n{task}: {r['photos']} photos, {r['errors']} wrong ({r['error_rate']:.1%}) — {path}")
        print(f"  {'margin':>6}  {'asked':>11}  {'error rate asked':>16}  {'not asked':>9}  {'errors asked':>12}")
        for m in r["margins"]:
            def pct(value):
                return "—" if value is None else f"{value:.1%}"
            print(f"  {m['margin']:>6.2f}  {m['asked']:>4} {pct(m['asked_share']):>6}  {pct(m['error_rate_asked']):>16}"
                  f"  {pct(m['error_rate_not_asked']):>9}  {pct(m['errors_asked_share']):>12}")
    text = json.dumps(results)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
