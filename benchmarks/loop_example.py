"""The corrections loop measured on synthetic photos: honest corrections are accepted and promote a better model;
poisoned (label-flipped) ones are queued, and the model trained on them anyway is not promoted.

    python benchmarks/loop_example.py [--out benchmarks/results/loop_example.json]

Every step is the real command (`phonegrade.cli.main`): crossval and train of a baseline recipe on a small
synthetic side set; a pool of new photos flagged honestly (the baseline's mistakes, with their true labels) and
maliciously (photos it gets right, flagged with another label, each three times as slightly varied copies);
`corrections triage` of each batch; crossval and train of the recipe with each batch's corrections (the accepted
ones, and for the poisoned batch also --corrections-all, as if nothing were triaged); `promote` of each candidate
against the baseline on the same folds and a frozen held-out set. Tiny models: a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python benchmarks/loop_example.py` from a checkout

RECIPE = ["--task", "side", "--arch", "wearnet", "--image-size", "32", "--batch-size", "8", "--workers", "0",
          "--lr", "3e-3", "--scheduler", "cosine", "--patience", "0", "--no-augment", "--seed", "0",
          "--no-progress"]
COPIES = 3  # records per poisoned photo: the photo, then slightly varied copies
# A tiny model trained for seconds is rarely sure of anything: its top probability rarely reaches the default 0.8.
CONFIDENT = 0.5


def run_loop(work: Path, per_class: int = 30, pool_per_class: int = 20, holdout_per_class: int = 30,
             folds: int = 3, epochs: int = 12) -> dict:
    """Run the loop in `work`; returns what each step measured."""
    from phonegrade.classifier import PhoneGradeClassifier
    from phonegrade.cli import main
    from phonegrade.corrections import CorrectionStore, Prediction
    from phonegrade.duplicates import varied_copy
    from phonegrade.images import load_image
    from phonegrade.synth import write_synthetic_dataset
    from phonegrade.triage import read_decisions

    def run(*argv: str) -> None:
        if main([*argv]) != 0:
            raise RuntimeError(f"phonegrade {' '.join(argv)} failed")

    base, pool, holdout = work / "data", work / "pool", work / "holdout"
    write_synthetic_dataset("side", base, per_class=per_class, size=48, seed=1, progress=False)
    write_synthetic_dataset("side", pool, per_class=pool_per_class, size=48, seed=99, progress=False)
    write_synthetic_dataset("side", holdout, per_class=holdout_per_class, size=48, seed=7, progress=False)
    recipe = [*RECIPE, "--epochs", str(epochs), "--data", str(base)]

    def recipe_run(name: str, *corrections: str) -> tuple[Path, Path]:
        """The recipe's crossval run and its model trained on all the data, with these corrections options."""
        cv, model = work / f"cv-{name}", work / f"model-{name}"
        run("crossval", *recipe, "--keep", "last", "--folds", str(folds), "--output-dir", str(cv), *corrections)
        run("train", *recipe, "--keep", "last", "--output-dir", str(model), *corrections)
        return cv, model

    def promote(name: str, cv: Path, model: Path) -> dict:
        run("promote", "--candidate", str(cv), "--baseline", str(work / "cv-baseline"), "--candidate-model",
            str(model), "--baseline-model", str(work / "model-baseline"), "--holdout", str(holdout))
        report = json.loads((cv / "promotion.json").read_text())
        return {"decision": report["decision"], "reason": report["reason"], **{
            f"{where}_{key}": c[key] for where, c in (("cv", report["comparisons"]["cross-validation"]),
                                                     ("holdout", report["comparisons"]["holdout"]))
            for key in ("candidate_accuracy", "baseline_accuracy", "difference", "interval_95",
                        "candidate_only_right", "baseline_only_right", "p_worse", "p_better")}}

    started = time.perf_counter()
    results: dict = {"setup": {"task": "side", "arch": "wearnet", "image_size": 32, "epochs": epochs,
                               "folds": folds, "base_photos": 3 * per_class, "pool_photos": 3 * pool_per_class,
                               "holdout_photos": 3 * holdout_per_class, "poison_copies": COPIES,
                               "triage_confident": CONFIDENT}}
    cv_base, model_base = recipe_run("baseline")
    baseline = PhoneGradeClassifier.from_pretrained(model_base)
    photos = sorted(pool.glob("*/*/*.png"))
    images = [load_image(p) for p in photos]
    predicted = [max(p, key=p.get) for p in baseline.predict(images)]
    truth = [p.parent.name for p in photos]
    shown = Prediction({label: 1 / 3 for label in baseline.labels}, {})

    honest = CorrectionStore(work / "corrections-honest").ensure()
    for image, label, guess in zip(images, truth, predicted, strict=True):
        if guess != label:  # users flag the baseline's mistakes, with the true label
            honest.add(image, shown, label, consent=True)
    poisoned = CorrectionStore(work / "corrections-poisoned").ensure()
    for i, (image, label, guess) in enumerate(zip(images, truth, predicted, strict=True)):
        if guess == label:  # photos it gets right, flagged with the next label, as the photo and varied copies
            wrong = baseline.labels[(baseline.labels.index(label) + 1) % len(baseline.labels)]
            for copy in range(COPIES):
                poisoned.add(image if copy == 0 else varied_copy(image, 100 * i + copy), shown, wrong, consent=True)

    for name, store in (("honest", honest), ("poisoned", poisoned)):
        run("corrections", "triage", "--source", str(store.root), "--model", str(model_base), "--confident",
            str(CONFIDENT))
        decisions = [d["decision"] for d in read_decisions(store.root).values()]
        results[f"{name}_triage"] = {"records": len(decisions), "accepted": decisions.count("accepted"),
                                     "queued": decisions.count("queued"),
                                     "queued_items": len({d["group"] for d in read_decisions(store.root).values()
                                                          if d["decision"] == "queued"})}
    results["baseline"] = {"cv_accuracy": json.loads((cv_base / "crossval.json").read_text())["accuracy"]}
    candidates = {"honest_accepted": ("--corrections", str(honest.root)),
                  "poisoned_accepted": ("--corrections", str(poisoned.root)),
                  "poisoned_all": ("--corrections", str(poisoned.root), "--corrections-all")}
    for name, options in candidates.items():
        if name == "poisoned_accepted" and not results["poisoned_triage"]["accepted"]:
            results[name] = {"corrections_used": 0, "decision": "nothing new: the baseline's recipe and data"}
            continue
        cv, model = recipe_run(name, *options)
        used = json.loads((model / "config.json").read_text())["corrections"]["used"]
        results[name] = {"corrections_used": used, **promote(name, cv, model)}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "loop_example.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = run_loop(Path(work))
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
