import csv
import json

import pytest
import torch

from phonegrade.calibration import (
    apply_clean_bias,
    apply_temperature,
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    scale_probabilities,
)
from phonegrade.classifier import PhoneGradeClassifier
from phonegrade.errors import ConfigError
from phonegrade.train_config import TrainConfig

from .conftest import run_train

LABELS = ["front", "back", "none"]


def _overconfident(n: int = 3000, true_temperature: float = 2.0, seed: int = 0):
    """Labels drawn from softmax(z / 2), probabilities reported as softmax(z): twice too sure."""
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(n, 3, generator=generator, dtype=torch.float64)
    targets = torch.multinomial(torch.softmax(logits / true_temperature, -1), 1, generator=generator)[:, 0]
    return torch.softmax(logits, -1), targets


def test_the_fitted_temperature_undoes_overconfidence_and_lowers_the_calibration_error():
    probabilities, targets = _overconfident()
    temperature = fit_temperature(probabilities, targets)
    assert temperature == pytest.approx(2.0, abs=0.15)
    before = expected_calibration_error(probabilities, targets)
    after = expected_calibration_error(scale_probabilities(probabilities, temperature), targets)
    assert before > 0.1 and after < 0.03
    assert torch.equal(scale_probabilities(probabilities, temperature).argmax(-1), probabilities.argmax(-1))


def test_expected_calibration_error_of_a_hand_made_case():
    # Two photos at 0.9 (one right): |0.5 - 0.9| = 0.4; two at 0.6, both right: |1 - 0.6| = 0.4; all weigh 1/2.
    probabilities = torch.tensor([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.6, 0.3]])
    targets = torch.tensor([0, 1, 0, 1])
    assert expected_calibration_error(probabilities, targets) == pytest.approx(0.4)


def _rows(probabilities, targets, groups):
    return [{"label": LABELS[t], "predicted": LABELS[int(p.argmax())], "group": g,
             **{f"p_{label}": float(v) for label, v in zip(LABELS, p, strict=True)}}
            for p, t, g in zip(probabilities, targets.tolist(), groups, strict=True)]


def test_grouped_report_scales_each_group_by_the_other_groups_temperature():
    probabilities, targets = _overconfident(n=1200)
    rows = _rows(probabilities, targets, ["a", "b", "c"] * 400)
    report = calibration_report(rows, LABELS, group="group")
    assert report["scaled_by_group"] and report["photos"] == 1200
    assert report["temperature"] == fit_temperature(probabilities, targets)
    assert report["ece_scaled"] < report["ece"] and report["nll_scaled"] < report["nll"]


def test_apply_temperature_divides_the_networks_logits(trained_side_model):
    classifier = PhoneGradeClassifier.from_pretrained(trained_side_model).eval()
    pixels = torch.randn(4, 3, classifier.image_size, classifier.image_size)
    with torch.no_grad():
        before = classifier(pixels)
        apply_temperature(classifier.net, 2.5)
        assert torch.allclose(classifier(pixels), before / 2.5, atol=1e-5)


def test_training_calibrates_from_a_crossval_run_and_records_it(side_data, tmp_path):
    run = tmp_path / "cv"
    run.mkdir()
    probabilities, targets = _overconfident(n=300)
    rows = _rows(probabilities, targets, ["a", "b"] * 150)
    (run / "crossval.json").write_text(json.dumps({"task": "side", "arch": "wearnet", "labels": LABELS,
                                                   "scheme": "leave-one-group-out", "group_by": "source_repo"}))
    with open(run / "predictions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["seed", "fold", "image", *rows[0]])
        writer.writeheader()
        writer.writerows({"seed": 0, "fold": 1 + i % 2, "image": f"p{i}.png", **r} for i, r in enumerate(rows))
    common = ["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--epochs", "1", "--image-size", "32",
              "--workers", "0"]
    run_train([*common, "--output-dir", str(tmp_path / "plain")])
    run_train([*common, "--output-dir", str(tmp_path / "calibrated"), "--calibrate-from", str(run)])
    config = json.loads((tmp_path / "calibrated" / "config.json").read_text())
    calibration = config["training"]["calibration"]
    assert calibration["run"] == "cv" and calibration["temperature"] == fit_temperature(probabilities, targets)
    assert calibration["scaled_by_group"] and calibration["ece_scaled"] < calibration["ece"]
    plain, calibrated = (PhoneGradeClassifier.from_pretrained(tmp_path / name).eval()
                         for name in ("plain", "calibrated"))
    pixels = torch.randn(4, 3, 32, 32)
    with torch.no_grad():  # the same seeded training; only the last layer is divided
        assert torch.allclose(calibrated(pixels) * calibration["temperature"], plain(pixels), atol=1e-4)
    assert "logits divided by" in (tmp_path / "calibrated" / "README.md").read_text()


def test_a_clean_bias_raises_no_scratch_in_the_saved_weights_and_is_recorded(tmp_path):
    from phonegrade.synth import write_synthetic_dataset

    write_synthetic_dataset("scratch", tmp_path / "data", per_class=6, size=32, seed=2, progress=False)
    common = ["--task", "scratch", "--arch", "wearnet", "--data", str(tmp_path / "data"), "--epochs", "1",
              "--image-size", "32", "--workers", "0"]
    run_train([*common, "--output-dir", str(tmp_path / "plain")])
    run_train([*common, "--output-dir", str(tmp_path / "biased"), "--clean-bias", "1.5"])
    plain, biased = (PhoneGradeClassifier.from_pretrained(tmp_path / name).eval() for name in ("plain", "biased"))
    pixels = torch.randn(4, 3, 32, 32)
    with torch.no_grad():  # the same seeded training; only no_scratch's logit moves, by exactly the bias
        shift = biased(pixels) - plain(pixels)
    clean = biased.labels.index("no_scratch")
    assert torch.allclose(shift[:, clean], torch.full((4,), 1.5), atol=1e-4)
    assert torch.allclose(torch.cat([shift[:, :clean], shift[:, clean + 1:]], 1), torch.zeros(4, 2), atol=1e-4)
    assert json.loads((tmp_path / "biased" / "config.json").read_text())["training"]["clean_bias"] == 1.5
    assert "no_scratch`'s logit raised by 1.5" in (tmp_path / "biased" / "README.md").read_text()


def test_a_clean_bias_is_refused_where_there_is_no_clean_class(trained_side_model):
    with pytest.raises(ConfigError, match="scratch task only"):
        TrainConfig(task="side", arch="wearnet", data=["x"], output_dir="y", clean_bias=1.0)
    for bad in ("1.0", float("nan"), True):  # a recipe file's value skips argparse's type check
        with pytest.raises(ConfigError, match="clean_bias must be a finite number"):
            TrainConfig(task="scratch", arch="wearnet", data=["x"], output_dir="y", clean_bias=bad)
    classifier = PhoneGradeClassifier.from_pretrained(trained_side_model)
    with pytest.raises(ValueError, match="cannot raise no_scratch"):
        apply_clean_bias(classifier.net, classifier.labels, 1.0)
