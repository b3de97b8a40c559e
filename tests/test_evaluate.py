import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from phonegrade.cli import main as cli_main
from phonegrade.metrics import compute_metrics, format_report

LABELS = ["major_scratch", "minor_scratch", "no_scratch"]


def test_metrics_equal_scikit_learn_on_the_same_predictions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 60).tolist()
    y_pred = [t if rng.random() < 0.7 else int(rng.integers(0, 3)) for t in y_true]
    metrics = compute_metrics(y_true, y_pred, LABELS, "scratch", "wearnet")
    report = classification_report(y_true, y_pred, labels=[0, 1, 2], target_names=LABELS, output_dict=True)
    assert metrics["accuracy"] == accuracy_score(y_true, y_pred)
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert metrics["confusion_matrix"] == confusion_matrix(y_true, y_pred).tolist()
    for label in LABELS:
        for key in ("precision", "recall", "f1-score", "support"):
            ours = metrics["per_class"][label]["f1" if key == "f1-score" else key]
            assert ours == pytest.approx(report[label][key])
    assert metrics["n_val"] == 60


def test_a_class_never_predicted_gets_zero_precision_not_an_error():
    metrics = compute_metrics([0, 1, 2], [0, 0, 0], LABELS, "scratch", "wearnet")
    assert metrics["per_class"]["no_scratch"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_report_shows_accuracy_matrix_and_per_class_rows():
    text = format_report(compute_metrics([0, 1, 2, 2], [0, 1, 1, 2], LABELS, "scratch", "resnet50"))
    assert "accuracy 0.750 on 4 images" in text
    assert "confusion matrix" in text and "minor_scratch" in text and "precision" in text


def test_evaluate_command_matches_scikit_learn_on_predict_output(trained_side_model, side_data, tmp_path, capsys):
    assert cli_main(["predict", "--model", str(trained_side_model), str(side_data / "val"), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    labels = ["front", "back", "none"]
    y_true = [labels.index(row["image"].split("/")[-2]) for row in rows]
    y_pred = [labels.index(row["label"]) for row in rows]

    assert cli_main(["evaluate", "--model", str(trained_side_model), "--data", str(side_data),
                     "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["accuracy"] == accuracy_score(y_true, y_pred)
    assert written["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist()
    assert f"accuracy {written['accuracy']:.3f}" in out and (tmp_path / "confusion_matrix.png").is_file()
