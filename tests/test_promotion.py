"""Promotion: a paired comparison of a candidate and a baseline on the same photos, and a push only if not worse."""

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from phonegrade.cli import main as cli_main
from phonegrade.promotion import compare, decide, mcnemar_exact, paired_bootstrap_interval
from phonegrade.train_config import TrainConfig

from .hub_server import HubServer

LABELS = ["front", "back", "none"]


def test_mcnemar_exact_counts_only_the_discordant_pairs():
    assert mcnemar_exact(0, 6) == {"p_worse": 1 / 64, "p_better": 1.0, "p_two_sided": 2 / 64}
    assert mcnemar_exact(6, 0)["p_better"] == 1 / 64
    assert mcnemar_exact(3, 3)["p_two_sided"] == 1.0
    assert mcnemar_exact(0, 0) == {"p_worse": 1.0, "p_better": 1.0, "p_two_sided": 1.0}
    assert mcnemar_exact(1, 8)["p_worse"] == pytest.approx(10 / 512, abs=1e-6)  # P(X ≥ 8), X ~ Bin(9, 1/2)


def test_the_bootstrap_interval_holds_the_difference_and_narrows_with_more_photos():
    baseline = np.array([True] * 40 + [False] * 10)
    candidate = np.ones(50, dtype=bool)
    low, high = paired_bootstrap_interval(candidate, baseline)
    assert 0.05 < low < 0.2 < high < 0.35
    wide = paired_bootstrap_interval(candidate[:10], np.array([True] * 8 + [False] * 2))
    assert wide[1] - wide[0] > high - low


def test_promotion_needs_the_data_to_show_the_candidate_is_not_worse_by_more_than_the_margin():
    right = np.ones(50, dtype=bool)
    ten_wrong = np.array([False] * 10 + [True] * 40)
    two_wrong = np.array([False] * 2 + [True] * 48)
    assert compare(ten_wrong, right)["verdict"] == "worse"
    better = compare(right, ten_wrong)
    assert better["verdict"] == "not worse" and better["better"]
    # Two photos fewer right of fifty: no proof of worse (McNemar p 0.25), and no proof of "not worse" either.
    assert compare(two_wrong, right)["verdict"] == "cannot tell"
    assert decide({"cv": compare(two_wrong, right)})[0] == "keep"
    assert decide({"cv": compare(right, right)})[0] == "promote"  # the same outcomes: not worse at all
    decision, reason = decide({"cv": compare(right, ten_wrong), "holdout": compare(ten_wrong, right)})
    assert decision == "keep" and "worse on holdout" in reason


def test_a_clearly_worse_candidate_is_kept_out_even_when_mcnemar_cannot_prove_it():
    # 235 photos: the baseline gets 6 wrong, the candidate 12; 8 photos only the baseline gets right, 2 only the
    # candidate. McNemar's one-sided p is 0.055, so "promote unless proved worse" promoted it.
    baseline = np.array([True] * 229 + [False] * 6)
    candidate = baseline.copy()
    candidate[:8] = False  # 8 the baseline gets right and the candidate wrong
    candidate[229:231] = True  # 2 the other way round
    comparison = compare(candidate, baseline)
    assert (comparison["baseline_only_right"], comparison["candidate_only_right"]) == (8, 2)
    assert comparison["p_worse"] == pytest.approx(0.0547, abs=1e-3) and comparison["verdict"] == "cannot tell"
    assert decide({"cross-validation": comparison})[0] == "keep"
    assert compare(candidate, baseline, margin=0.06)["verdict"] == "not worse"  # a looser margin admits it


# The recipe of conftest's trained_side_model, as a crossval.json records it.
TEST_RECIPE = {key: value for key, value in dataclasses.asdict(TrainConfig(
    task="side", data="", output_dir="", arch="wearnet", epochs=2, lr=1e-2, image_size=48, batch_size=8,
    workers=0)).items() if key not in ("data", "output_dir")}


def write_run(folder: Path, images: list[str], truth: list[str], right: list[bool], folds: int = 2,
              training: dict | None = None, task: str = "side", labels: list[str] = LABELS) -> Path:
    """A crossval output folder whose out-of-fold predictions are right where `right` says."""
    folder.mkdir(parents=True)
    (folder / "crossval.json").write_text(json.dumps({"task": task, "data": "photos", "folds": folds,
                                                      "seeds": [0], "n_images": len(images), "labels": labels,
                                                      "arch": "wearnet", "training": training or TEST_RECIPE}))
    with open(folder / "predictions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["seed", "fold", "image", "label", "predicted", *(f"p_{x}" for x in labels)])
        writer.writeheader()
        for i, (image, label, ok) in enumerate(zip(images, truth, right, strict=True)):
            predicted = label if ok else labels[(labels.index(label) + 1) % 3]
            writer.writerow({"seed": 0, "fold": i % folds + 1, "image": image, "label": label,
                             "predicted": predicted, **{f"p_{x}": 0.8 if x == predicted else 0.1 for x in labels}})
    return folder


@pytest.fixture
def hub(tmp_path):
    with HubServer() as server, server.patch_clients(hf_home=tmp_path / "hf-home"):
        yield server


def test_promote_pushes_a_candidate_not_worse_and_keeps_the_baseline_over_a_worse_one(
        hub, trained_side_model, side_data, tmp_path, capsys):
    images = [f"photo-{i}.png" for i in range(60)]
    truth = [LABELS[i % 3] for i in range(60)]
    baseline = write_run(tmp_path / "cv-baseline", images, truth, [i % 5 != 0 for i in range(60)])  # 48 right
    better = write_run(tmp_path / "cv-better", images, truth, [i % 10 != 0 for i in range(60)])  # 54 right
    worse = write_run(tmp_path / "cv-worse", images, truth, [i % 2 == 0 for i in range(60)])  # 30 right
    model = tmp_path / "model"
    shutil.copytree(trained_side_model, model)
    common = ["promote", "--baseline", str(baseline), "--candidate-model", str(model), "--baseline-model",
              str(trained_side_model), "--holdout", str(side_data), "--push-to-hub", "user/side"]

    assert cli_main([*common, "--candidate", str(worse)]) == 0
    report = json.loads((worse / "promotion.json").read_text())
    assert report["decision"] == "keep" and "pushed" not in report
    cv = report["comparisons"]["cross-validation"]
    assert (cv["candidate_accuracy"], cv["baseline_accuracy"], cv["verdict"]) == (0.5, 0.8, "worse")
    assert cv["seeds"] == 1 and "| seeds |" in (worse / "promotion.md").read_text()
    assert report["comparisons"]["holdout"]["candidate_only_right"] == 0  # the same weights on both sides
    assert "not pushed to user/side: the decision is keep" in capsys.readouterr().out
    assert not hub.repo_exists("user/side")
    assert "**keep**" in (worse / "promotion.md").read_text()

    assert cli_main([*common, "--candidate", str(better)]) == 0
    report = json.loads((better / "promotion.json").read_text())
    assert report["decision"] == "promote" and report["pushed"]
    assert report == json.loads((model / "promotion.json").read_text())
    card = hub.files("user/side")["README.md"].decode()
    assert "## Promotion" in card and "**promote**" in card and "| cross-validation | 60 | 0.900 | 0.800 |" in card


def test_promote_scores_a_baseline_model_on_the_candidate_runs_photos(trained_side_model, side_data, tmp_path):
    photos = sorted(side_data.glob("*/*/*.png"))
    candidate = write_run(tmp_path / "cv", [str(p) for p in photos], [p.parent.name for p in photos],
                          [True] * len(photos))
    assert cli_main(["promote", "--candidate", str(candidate), "--baseline", str(trained_side_model), "--data",
                     str(side_data)]) == 0
    report = json.loads((candidate / "promotion.json").read_text())
    cv = report["comparisons"]["cross-validation"]
    assert cv["photos"] == len(photos) and cv["candidate_accuracy"] == 1.0 and cv["baseline_accuracy"] < 0.9


def test_promote_refuses_runs_on_different_folds_in_one_line(tmp_path, capsys):
    images = [f"photo-{i}.png" for i in range(12)]
    truth = [LABELS[i % 3] for i in range(12)]
    two = write_run(tmp_path / "two", images, truth, [True] * 12, folds=2)
    three = write_run(tmp_path / "three", images, truth, [True] * 12, folds=3)
    assert cli_main(["promote", "--candidate", str(two), "--baseline", str(three)]) == 2
    err = capsys.readouterr().err
    assert "differ in folds (2 vs 3)" in err and len(err.strip().splitlines()) == 1
    assert cli_main(["promote", "--candidate", str(two), "--baseline", str(two), "--holdout", "x"]) == 2
    assert "--holdout scores two models" in capsys.readouterr().err


def test_promote_refuses_a_candidate_model_of_another_recipe_than_its_run(trained_side_model, tmp_path, capsys):
    images = [f"photo-{i}.png" for i in range(6)]
    truth = [LABELS[i % 3] for i in range(6)]
    baseline = write_run(tmp_path / "cv-baseline", images, truth, [True] * 6)
    other_recipe = write_run(tmp_path / "cv-other", images, truth, [True] * 6,
                             training={**TEST_RECIPE, "lr": 0.5, "epochs": 9})
    code = cli_main(["promote", "--candidate", str(other_recipe), "--baseline", str(baseline), "--candidate-model",
                     str(trained_side_model)])
    err = capsys.readouterr().err
    assert code == 2 and "was not trained with the recipe" in err and "epochs, lr" in err
    grades = ["major_scratch", "minor_scratch", "no_scratch"]
    scratch_run = write_run(tmp_path / "cv-scratch", images, [grades[i % 3] for i in range(6)], [True] * 6,
                            task="scratch", labels=grades, training={**TEST_RECIPE, "task": "scratch"})
    assert cli_main(["promote", "--candidate", str(scratch_run), "--baseline", str(baseline), "--candidate-model",
                     str(trained_side_model)]) == 2
    assert "is a side model" in capsys.readouterr().err
