import csv
import json
import shutil

import pytest
import torch

from phonegrade.classifier import PhoneGradeClassifier
from phonegrade.cli import main as cli_main
from phonegrade.crossvalidation import combine_crossval
from phonegrade.data import load_splits
from phonegrade.errors import ModelLoadError
from phonegrade.models import MeanProbabilityEnsemble, create_model
from phonegrade.training import load_initial_model

LABELS = ["front", "back", "none"]


def test_ensemble_output_is_the_log_of_its_members_mean_probabilities():
    torch.manual_seed(0)
    members = [create_model("wearnet").eval() for _ in range(3)]
    ensemble = MeanProbabilityEnsemble(members).eval()
    x = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        expected = torch.stack([m(x).softmax(dim=1) for m in members]).mean(dim=0)
        assert torch.allclose(ensemble(x).softmax(dim=1), expected, atol=1e-6)
        assert torch.allclose(ensemble(x).exp(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        MeanProbabilityEnsemble(members[:1])


@pytest.fixture(scope="module")
def two_members(trained_side_model, side_data, tmp_path_factory):
    """The trained side model and a copy with perturbed weights: two members validated on one split."""
    folder = tmp_path_factory.mktemp("member-2")
    for name in ("config.json", "model.safetensors"):
        shutil.copy(trained_side_model / name, folder / name)
    member = PhoneGradeClassifier.from_pretrained(folder)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in member.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    member.save_pretrained(folder)
    # Members that agreed would let an ensemble that reads one of them pass for their mean.
    photos = sorted(side_data.glob("val/*/*.png"))
    first = PhoneGradeClassifier.from_pretrained(trained_side_model).predict_proba(photos)
    assert (first - member.predict_proba(photos)).abs().max() > 0.01
    return trained_side_model, folder


def test_ensemble_command_writes_a_model_folder_that_predicts_its_members_mean(two_members, side_data, tmp_path):
    out = tmp_path / "ensemble"
    code = cli_main(["ensemble", *map(str, two_members), "--data", str(side_data), "--output-dir", str(out),
                     "--data-description", "two test members", "--no-progress"])
    assert code == 0
    model = PhoneGradeClassifier.from_pretrained(out)
    members = [PhoneGradeClassifier.from_pretrained(m) for m in two_members]
    assert model.members == 2 and isinstance(model.net, MeanProbabilityEnsemble)
    assert model.config.num_parameters == 2 * members[0].config.num_parameters
    val = load_splits(side_data, "side").val
    images = [s.load() for s in val[:5]]
    mean = torch.stack([m.predict_proba(images) for m in members]).mean(dim=0)
    assert torch.allclose(model.predict_proba(images), mean, atol=1e-5)
    # Scored on the members' validation split, and the card says what the model is.
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_val"] == len(val)
    assert model.config.metrics["accuracy"] == metrics["accuracy"]
    card = (out / "README.md").read_text()
    assert "mean class probabilities of 2 `wearnet` models" in card and "two test members" in card
    from phonegrade.grading import LoadedModel, describe_training_data

    line = describe_training_data(LoadedModel(model, "ensemble", None))
    assert line.startswith("2 wearnet models averaged, each trained on two test members")


def test_members_must_share_architecture_preprocessing_and_validation_split(two_members, tmp_path):
    first, second = (PhoneGradeClassifier.from_pretrained(m) for m in two_members)
    resized = PhoneGradeClassifier({**second.config.to_dict(), "image_size": 64})
    with pytest.raises(ValueError, match="must share image_size"):
        PhoneGradeClassifier.from_members([first, resized])
    first.config.crossval = {"accuracy": {"mean": 0.9, "std": 0.1}}
    pair = PhoneGradeClassifier.from_members([first, second])
    assert pair.config.crossval is None and pair.config.metrics is None  # the first member's, not the pair's
    with pytest.raises(ValueError, match="is itself an ensemble"):
        PhoneGradeClassifier.from_members([first, pair])

    other_split = tmp_path / "other-split"
    second.config.training = {**second.config.training, "seed": 7}
    second.save_pretrained(other_split)
    code = cli_main(["ensemble", str(two_members[0]), str(other_split), "--data", str(tmp_path),
                     "--output-dir", str(tmp_path / "out")])
    assert code == 2 and not (tmp_path / "out").exists()


def test_fine_tuning_from_an_ensemble_is_refused_with_a_pointer_to_its_members(two_members, tmp_path):
    pair = PhoneGradeClassifier.from_members([PhoneGradeClassifier.from_pretrained(m) for m in two_members])
    pair.save_pretrained(tmp_path / "pair")
    with pytest.raises(ValueError, match="ensemble of 2 models; fine-tune from one of its members"):
        load_initial_model(create_model("wearnet"), str(tmp_path / "pair"), "side", "wearnet")


def test_a_config_whose_member_count_does_not_fit_the_weights_is_a_clear_error(two_members, tmp_path):
    pair = PhoneGradeClassifier.from_members([PhoneGradeClassifier.from_pretrained(m) for m in two_members])
    folder = pair.save_pretrained(tmp_path / "pair")
    config = json.loads((folder / "config.json").read_text())
    for members, message in [(3, "weights do not fit"), (0, "members .* between 1 and 16"),
                             ("2", "members .* between 1 and 16")]:
        (folder / "config.json").write_text(json.dumps({**config, "members": members}))
        with pytest.raises(ModelLoadError, match=message):
            PhoneGradeClassifier.from_pretrained(folder)


def _crossval_run(folder, probabilities, folds):
    """A crossval output folder: photos a-d of two folds, with the given out-of-fold probabilities."""
    folder.mkdir()
    truth = ["front", "back", "none", "back"]
    (folder / "crossval.json").write_text(json.dumps(
        {"task": "side", "arch": "wearnet", "folds": 2, "seeds": [0], "n_images": 4, "labels": LABELS,
         "accuracy": {"mean": 0.5, "std": 0.0}}))
    with open(folder / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "fold", "image", "label", "predicted", "p_front", "p_back", "p_none"])
        for image, label, fold, p in zip("abcd", truth, folds, probabilities, strict=True):
            writer.writerow([0, fold, image, label, LABELS[max(range(3), key=p.__getitem__)], *p])
    return folder


def test_combined_crossval_scores_each_photo_by_the_mean_of_the_runs_probabilities(tmp_path):
    folds = [1, 1, 2, 2]
    one = _crossval_run(tmp_path / "one", [[0.6, 0.4, 0], [0.6, 0.4, 0], [0, 0, 1], [0.9, 0.1, 0]], folds)
    two = _crossval_run(tmp_path / "two", [[0.2, 0.8, 0], [0.0, 1.0, 0], [0, 1, 0], [0.9, 0.1, 0]], folds)
    summary, rows = combine_crossval([one, two])
    by_image = {r["image"]: r for r in rows}
    # a: front 0.4 vs back 0.6 → wrong; b: back → right; c: none 0.5 vs back 0.5, first label wins → back, wrong
    assert [by_image[i]["predicted"] for i in "abcd"] == ["back", "back", "back", "front"]
    assert by_image["a"]["p_back"] == 0.6
    assert summary["fold_accuracy"] == [0.5, 0.0]
    assert summary["accuracy"]["mean"] == 0.25 and summary["members"] == 2
    assert summary["pooled_confusion_matrix"] == [[0, 1, 0], [1, 1, 0], [0, 1, 0]]

    moved = _crossval_run(tmp_path / "moved", [[1, 0, 0]] * 4, [1, 2, 1, 2])
    with pytest.raises(ValueError, match="hold out different photos"):
        combine_crossval([one, moved])
    with pytest.raises(ValueError, match="not a `phonegrade crossval` output folder"):
        combine_crossval([one, tmp_path])


def test_crossval_runs_on_other_folds_are_a_clear_command_line_error(two_members, side_data, tmp_path, capsys):
    one = _crossval_run(tmp_path / "one", [[1, 0, 0]] * 4, [1, 1, 2, 2])
    moved = _crossval_run(tmp_path / "moved", [[1, 0, 0]] * 4, [1, 2, 1, 2])
    code = cli_main(["ensemble", *map(str, two_members), "--data", str(side_data), "--output-dir",
                     str(tmp_path / "out"), "--crossval-runs", str(one), str(moved), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "hold out different photos" in err and "Traceback" not in err
