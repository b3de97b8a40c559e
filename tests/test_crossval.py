import csv
import json
import shutil
import statistics
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from phonegrade.classifier import PhoneGradeClassifier
from phonegrade.cli import main as cli_main
from phonegrade.crossvalidation import confident_errors, summarize_folds
from phonegrade.data import Sample, kfold_splits
from phonegrade.models import create_model
from phonegrade.training import load_initial_model

from .conftest import run_train


def _samples(per_class: list[int]) -> list[Sample]:
    return [Sample(load=lambda: "", label=label, key=f"{label}-{i}")
            for label, n in enumerate(per_class) for i in range(n)]


def test_every_image_is_validated_exactly_once_per_seed_with_classes_balanced_across_folds():
    samples = _samples([20, 15, 11])
    folds = kfold_splits(samples, folds=5, seed=3)
    assert len(folds) == 5
    val_keys = [s.key for _, val in folds for s in val]
    assert sorted(val_keys) == sorted(s.key for s in samples)
    for train, val in folds:
        assert not {s.key for s in train} & {s.key for s in val}
        assert len(train) + len(val) == len(samples)
        per_class = Counter(s.label for s in val)
        assert per_class[0] == 4 and per_class[1] == 3 and per_class[2] in (2, 3)
    assert [s.key for s in kfold_splits(samples, 5, seed=3)[0][1]] == [s.key for s in folds[0][1]]
    assert [s.key for s in kfold_splits(samples, 5, seed=4)[0][1]] != [s.key for s in folds[0][1]]


def test_too_few_images_per_class_for_the_folds_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 5 images per class.*smallest class has 4"):
        kfold_splits(_samples([10, 10, 4]), folds=5, seed=0)


def test_summary_is_mean_and_sample_std_over_folds_with_a_pooled_confusion_matrix():
    labels = ["front", "back", "none"]

    def fold(accuracy, recalls, matrix):
        return {"accuracy": accuracy, "macro_f1": accuracy - 0.1, "confusion_matrix": matrix,
                "per_class": {label: {"recall": r} for label, r in zip(labels, recalls, strict=True)}}

    folds = [fold(0.9, [1.0, 0.8, 0.9], [[2, 0, 0], [1, 4, 0], [0, 0, 3]]),
             fold(0.7, [0.5, 0.9, 0.7], [[1, 1, 0], [0, 5, 0], [1, 0, 2]])]
    summary = summarize_folds(folds, labels)
    assert summary["accuracy"] == {"mean": 0.8, "std": round(statistics.stdev([0.9, 0.7]), 4)}
    assert summary["recall"]["front"] == {"mean": 0.75, "std": round(statistics.stdev([1.0, 0.5]), 4)}
    assert summary["pooled_confusion_matrix"] == [[3, 1, 0], [1, 9, 0], [1, 0, 5]]
    assert summary["folds_run"] == 2


def test_crossval_command_trains_each_fold_and_reports_what_the_folds_measured(side_data, tmp_path, capsys):
    out = tmp_path / "cv"
    code = cli_main(["crossval", "--task", "side", "--arch", "wearnet", "--data", str(side_data), "--folds", "3",
                     "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0",
                     "--output-dir", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "crossval.json").read_text())
    folds = [json.loads((out / f"fold-0-{k}" / "metrics.json").read_text()) for k in (1, 2, 3)]
    assert summary["n_images"] == 36  # side_data: 12 per class over train/ and val/
    assert sum(f["n_val"] for f in folds) == 36
    assert summary["fold_accuracy"] == [f["accuracy"] for f in folds]
    assert summary["accuracy"]["mean"] == round(statistics.fmean(f["accuracy"] for f in folds), 4)
    assert sum(map(sum, summary["pooled_confusion_matrix"])) == 36
    assert not (out / "fold-0-1" / "checkpoints").exists()
    assert PhoneGradeClassifier.from_pretrained(out / "fold-0-1").labels == ["front", "back", "none"]
    assert "3 runs: accuracy" in capsys.readouterr().out
    # Every photo's out-of-fold prediction, by the fold model that did not train on it: the folds' numbers.
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 36 and len({r["image"] for r in rows}) == 36
    for k, metrics in enumerate(folds, start=1):
        fold_rows = [r for r in rows if r["fold"] == str(k)]
        assert len(fold_rows) == metrics["n_val"]
        correct = sum(r["label"] == r["predicted"] for r in fold_rows)
        assert correct / len(fold_rows) == pytest.approx(metrics["accuracy"])
    assert summary["confident_errors"] == len(confident_errors(
        [{**r, **{key: float(v) for key, v in r.items() if key.startswith("p_")}} for r in rows], 0.8))
    # A fold model is scored again on exactly its held-out fold, never on photos it trained on.
    for k, metrics in enumerate(folds, start=1):
        assert cli_main(["evaluate", "--model", str(out / f"fold-0-{k}"), "--data", str(side_data),
                         "--output", str(tmp_path / f"eval-{k}")]) == 0
        evaluated = json.loads((tmp_path / f"eval-{k}" / "metrics.json").read_text())
        assert (evaluated["n_val"], evaluated["accuracy"]) == (metrics["n_val"], metrics["accuracy"])
        assert evaluated["confusion_matrix"] == metrics["confusion_matrix"]
    config = json.loads((out / "fold-0-2" / "config.json").read_text())
    assert config["data"]["crossval_fold"]["fold"] == 2
    assert config["data"]["name"] == side_data.name  # a name, not a path
    capsys.readouterr()
    other = tmp_path / "other"  # other photos: the fold's held-out photos cannot be found, so no score
    shutil.copytree(side_data / "train", other)
    assert cli_main(["evaluate", "--model", str(out / "fold-0-1"), "--data", str(other),
                     "--output", str(tmp_path / "eval-other")]) == 2
    assert "not the data this model was cross-validated on" in capsys.readouterr().err
    assert not (tmp_path / "eval-other" / "metrics.json").exists()


def test_confident_errors_are_the_wrong_predictions_above_the_threshold_most_confident_first():
    rows = [{"image": "a", "label": "front", "predicted": "back", "p_front": 0.1, "p_back": 0.85, "p_none": 0.05},
            {"image": "b", "label": "front", "predicted": "front", "p_front": 0.95, "p_back": 0.05, "p_none": 0.0},
            {"image": "c", "label": "none", "predicted": "back", "p_front": 0.0, "p_back": 0.97, "p_none": 0.03},
            {"image": "d", "label": "none", "predicted": "front", "p_front": 0.6, "p_back": 0.1, "p_none": 0.3}]
    assert [r["image"] for r in confident_errors(rows, 0.8)] == ["c", "a"]


def test_init_from_starts_training_from_another_models_weights(trained_side_model, side_data, tmp_path):
    start = PhoneGradeClassifier.from_pretrained(trained_side_model)
    net = create_model("wearnet", 3)
    load_initial_model(net, str(trained_side_model), "side", "wearnet")
    for name, tensor in start.net.state_dict().items():
        assert torch.equal(net.state_dict()[name], tensor), name

    with pytest.raises(ValueError, match="is a wearnet side model; this run trains a wearnet scratch model"):
        load_initial_model(create_model("wearnet", 3), str(trained_side_model), "scratch", "wearnet")

    out = tmp_path / "fine-tuned"
    run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir", str(out),
               "--init-from", str(trained_side_model), "--epochs", "1", "--image-size", "48", "--batch-size", "8",
               "--workers", "0"])
    config = json.loads((out / "config.json").read_text())
    # Named in the config and card by its folder's name: a local path means nothing on the Hub.
    assert config["training"]["init_from"] == trained_side_model.name
    card = (out / "README.md").read_text()
    assert f"`{trained_side_model.name}`" in card and str(trained_side_model.parent) not in card
    assert "base_model" not in card  # only a Hub id can be one


def test_init_from_together_with_imagenet_weights_is_refused(trained_side_model, side_data, tmp_path):
    result = run_train(["--task", "side", "--arch", "wearnet+mobilenet_v2", "--data", str(side_data),
                        "--output-dir", str(tmp_path / "x"), "--init-from", str(trained_side_model),
                        "--weights", "imagenet", "--epochs", "1"], check=False)
    assert result.returncode == 2
    assert "--init-from and --weights both set the starting weights" in result.stderr


def test_keep_last_saves_the_final_epoch_and_crossval_keeps_the_last_by_default(side_data, tmp_path):
    from phonegrade.cli import build_parser

    args = build_parser().parse_args(["crossval", "--task", "side", "--data", "d", "--output-dir", "o"])
    assert args.keep == "last"

    out = tmp_path / "last"
    # A learning rate this high makes the second epoch's weights differ from the first's.
    run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir", str(out),
               "--epochs", "2", "--image-size", "32", "--batch-size", "8", "--workers", "0", "--keep", "last",
               "--lr", "0.5", "--patience", "0"])
    saved = load_file(str(out / "model.safetensors"))
    last = load_file(str(out / "checkpoints" / "last" / "model.safetensors"))
    assert all(torch.equal(saved[k], last[k]) for k in saved)
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["keep"] == "last"
    if config["training"]["best_epoch"] != config["training"]["epochs_run"]:
        best = load_file(str(out / "checkpoints" / "best.safetensors"))
        assert not all(torch.equal(saved[k], best[k]) for k in saved)


def test_crossval_summary_goes_into_the_config_and_card_of_the_final_model(side_data, tmp_path):
    summary = {"task": "side", "arch": "wearnet", "folds": 5, "seeds": [0, 1], "n_images": 235,
               "accuracy": {"mean": 0.8512, "std": 0.031}, "macro_f1": {"mean": 0.84, "std": 0.03},
               "recall": {"front": {"mean": 0.8, "std": 0.1}, "back": {"mean": 0.85, "std": 0.05},
                          "none": {"mean": 0.9, "std": 0.04}}}
    (tmp_path / "crossval.json").write_text(json.dumps(summary))
    out = tmp_path / "final"
    run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir", str(out),
               "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0", "--mirror-pad", "0.5",
               "--crossval-summary", str(tmp_path / "crossval.json")])
    assert json.loads((out / "config.json").read_text())["crossval"]["accuracy"] == {"mean": 0.8512, "std": 0.031}
    card = (out / "README.md").read_text()
    assert "5-fold stratified cross-validation" in card and "**0.851 ± 0.031**" in card
    assert "| `back` | 0.850 ± 0.050 |" in card
    assert "| augmentation | standard, mirrored padding (p 0.5) |" in card
    # The Hub's metadata leads with the cross-validated accuracy, then the final model's own small split.
    from huggingface_hub import ModelCard

    results = ModelCard.load(out / "README.md").data.eval_results
    assert [(r.dataset_split, r.metric_value) for r in results][0] == ("5-fold cross-validation", 0.8512)
    assert results[1].dataset_split == "validation"

    (tmp_path / "scratch.json").write_text(json.dumps({**summary, "task": "scratch"}))
    result = run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir",
                        str(tmp_path / "x"), "--crossval-summary", str(tmp_path / "scratch.json")], check=False)
    assert result.returncode == 2 and "is for the scratch task, not side" in result.stderr


def test_a_leave_one_group_out_summary_goes_beside_the_stratified_one_and_leads_the_card(side_data, tmp_path):
    stratified = {"task": "side", "arch": "wearnet", "folds": 5, "seeds": [0], "n_images": 36,
                  "accuracy": {"mean": 0.97, "std": 0.02}, "macro_f1": {"mean": 0.96, "std": 0.03},
                  "recall": {label: {"mean": 0.97, "std": 0.02} for label in ("front", "back", "none")}}
    grouped = {"task": "side", "arch": "wearnet", "scheme": "leave-one-group-out", "group_by": "source_repo",
               "folds": 2, "seeds": [0], "n_images": 36,
               "pooled": {"n": 36, "labels": ["front", "back", "none"], "accuracy": 0.8611,
                          "recall": {"front": 0.9, "back": 0.8, "none": 0.88}},
               "per_group": {"objects": {"n": 12, "labels": ["none"], "accuracy": 0.75, "recall": {"none": 0.75}},
                             "phones": {"n": 24, "labels": ["front", "back"], "accuracy": 0.9167,
                                        "recall": {"front": 0.9, "back": 0.8}}}}
    (tmp_path / "cv.json").write_text(json.dumps(stratified))
    (tmp_path / "loso.json").write_text(json.dumps(grouped))
    out = tmp_path / "final"
    run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir", str(out),
               "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0",
               "--crossval-summary", str(tmp_path / "cv.json"), str(tmp_path / "loso.json")])
    config = json.loads((out / "config.json").read_text())
    assert config["crossval"]["accuracy"]["mean"] == 0.97
    assert config["crossval_grouped"]["pooled"]["accuracy"] == 0.8611
    card = (out / "README.md").read_text()
    assert "## Photos from sources it never saw" in card and "accuracy\n**0.861**" in card
    assert "| objects | 12 | none | 0.750 | none 0.750 |" in card
    from huggingface_hub import ModelCard

    results = ModelCard.load(out / "README.md").data.eval_results
    assert [(r.dataset_split, r.metric_value) for r in results][:2] == [
        ("leave-one-source_repo-out", 0.8611), ("5-fold cross-validation", 0.97)]

    result = run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir",
                        str(tmp_path / "x"), "--crossval-summary", str(tmp_path / "loso.json"),
                        str(tmp_path / "loso.json")], check=False)
    assert result.returncode == 2 and "at most one leave-one-group-out" in result.stderr


def test_kinds_csv_gives_out_of_fold_accuracy_per_kind_and_damaged_vs_clean(tmp_path):
    from phonegrade.synth import write_synthetic_dataset

    data = tmp_path / "scratch"
    write_synthetic_dataset("scratch", data, per_class=6, size=32, seed=4, progress=False)
    files = sorted(p.relative_to(data).as_posix() for p in data.glob("*/*/*.png"))
    kinds = tmp_path / "labels.csv"
    kinds.write_text("file,kind\n" + "".join(f"{f},{'lab' if i % 2 else 'web'}\n" for i, f in enumerate(files)))
    out = tmp_path / "cv"
    assert cli_main(["crossval", "--task", "scratch", "--arch", "wearnet", "--data", str(data), "--folds", "2",
                     "--epochs", "1", "--image-size", "32", "--batch-size", "6", "--workers", "0", "--kinds",
                     str(kinds), "--output-dir", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "crossval.json").read_text())
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    for kind in ("lab", "web"):
        chosen = [r for r in rows if r["kind"] == kind]
        assert summary["per_kind"][kind]["n"] == len(chosen) == 9
        assert summary["per_kind"][kind]["accuracy"] == pytest.approx(
            sum(r["label"] == r["predicted"] for r in chosen) / 9, abs=1e-4)
        assert summary["per_kind"][kind]["damaged_vs_clean_accuracy"] == pytest.approx(
            sum((r["label"] == "no_scratch") == (r["predicted"] == "no_scratch") for r in chosen) / 9, abs=1e-4)
    folds = [json.loads((out / f"fold-0-{k}" / "metrics.json").read_text()) for k in (1, 2)]
    assert summary["damaged_vs_clean_accuracy"]["mean"] == pytest.approx(
        statistics.fmean(f["damaged_vs_clean_accuracy"] for f in folds), abs=1e-4)


def test_resume_keeps_folds_finished_with_the_same_recipe_and_trains_the_rest(side_data, tmp_path, capsys):
    out = tmp_path / "cv"
    args = ["crossval", "--task", "side", "--arch", "wearnet", "--data", str(side_data), "--folds", "2",
            "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0",
            "--output-dir", str(out), "--no-progress"]
    assert cli_main(args) == 0
    first = json.loads((out / "crossval.json").read_text())
    finished = (out / "fold-0-1" / "model.safetensors").read_bytes()
    shutil.rmtree(out / "fold-0-2")  # interrupted before fold 2 finished
    capsys.readouterr()
    assert cli_main([*args, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"{out / 'fold-0-1'} is finished with this recipe: kept" in printed
    assert "fold-0-2 is finished" not in printed
    assert (out / "fold-0-1" / "model.safetensors").read_bytes() == finished
    assert (out / "fold-0-2" / "model.safetensors").is_file()
    resumed = json.loads((out / "crossval.json").read_text())
    assert resumed["fold_accuracy"][0] == first["fold_accuracy"][0] and resumed["n_images"] == first["n_images"]
    # Another recipe in the same folder would mix two recipes' folds into one summary: refused, nothing trained.
    assert cli_main([*args, "--resume", "--lr", "0.01"]) == 2
    assert "trained with other options (lr)" in capsys.readouterr().err
    assert (out / "fold-0-1" / "model.safetensors").read_bytes() == finished


def _grouped_side_folders(root, side_data):
    """Two data folders: `a` with a labels.csv naming two sources (its fronts and backs one, its look-alikes the
    other), and `b` without one (one group, named after the folder)."""
    a, b = root / "a", root / "b"
    rows = ["file,kind,source_repo"]
    for label in ("front", "back", "none"):
        for folder in (a, b):
            (folder / label).mkdir(parents=True)
        for i, path in enumerate(sorted((side_data / "train" / label).glob("*.png"))[:8]):
            target = (a if i < 4 else b) / label / path.name
            shutil.copy(path, target)
            if i < 4:
                rows.append(f"{label}/{path.name},{label}_kind,{'phones' if label != 'none' else 'objects'}")
    (a / "labels.csv").write_text("\n".join(rows) + "\n")
    return a, b


def test_group_splits_hold_out_each_group_once_and_train_on_every_other():
    from phonegrade.data import group_splits

    samples = _samples([6, 6, 6])
    groups = ["x" if i % 3 == 0 else "y" if i % 3 == 1 else "z" for i in range(len(samples))]
    plan = group_splits(samples, groups)
    assert [name for name, _, _ in plan] == ["x", "y", "z"]
    for name, train, val in plan:
        assert {groups[samples.index(s)] for s in val} == {name}
        assert name not in {groups[samples.index(s)] for s in train}
        assert len(train) + len(val) == len(samples)
    with pytest.raises(ValueError, match="at least two groups"):
        group_splits(samples, ["x"] * len(samples))


def test_grouped_crossval_never_trains_on_a_photo_of_the_held_out_group(side_data, tmp_path, monkeypatch):
    import phonegrade.crossval_loop as crossval_loop
    from phonegrade.data import load_sources, read_label_column

    a, b = _grouped_side_folders(tmp_path, side_data)
    samples, origins, _ = load_sources([str(a), str(b)], "side")
    group_of = dict(zip((s.key for s in samples), read_label_column(samples, origins, "source_repo"), strict=True))
    assert set(group_of.values()) == {"phones", "objects", "b"}
    trained_on = []
    real_train = crossval_loop.train

    def recording_train(config, splits, crossval_fold):
        trained_on.append((crossval_fold["group"], {group_of[s.key] for s in splits.train},
                           {group_of[s.key] for s in splits.val}))
        return real_train(config, splits=splits, crossval_fold=crossval_fold)

    monkeypatch.setattr(crossval_loop, "train", recording_train)
    out = tmp_path / "cv"
    assert cli_main(["crossval", "--task", "side", "--arch", "wearnet", "--data", str(a), str(b), "--group-by",
                     "source_repo", "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0",
                     "--output-dir", str(out), "--no-progress"]) == 0
    assert sorted(group for group, _, _ in trained_on) == ["b", "objects", "phones"]
    for group, train_groups, val_groups in trained_on:
        assert val_groups == {group} and group not in train_groups
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(samples) and {r["group"] for r in rows} == {"b", "phones", "objects"}
    assert all(group_of[r["image"]] == r["group"] for r in rows)
    summary = json.loads((out / "crossval.json").read_text())
    assert summary["scheme"] == "leave-one-group-out" and summary["folds"] == 3
    assert summary["pooled"]["n"] == len(samples)
    assert summary["pooled"]["accuracy"] == pytest.approx(
        sum(r["label"] == r["predicted"] for r in rows) / len(rows), abs=1e-4)
    objects = [r for r in rows if r["group"] == "objects"]
    assert summary["per_group"]["objects"]["labels"] == ["none"]
    assert summary["per_group"]["objects"]["recall"]["none"] == pytest.approx(
        sum(r["predicted"] == "none" for r in objects) / len(objects), abs=1e-4)
    # Kinds come from the labels.csv by default; photos it does not list are their folder's kind.
    assert set(summary["per_kind"]) == {"front_kind", "back_kind", "none_kind", "b"}
    fold = json.loads((out / "fold-0-1" / "config.json").read_text())["data"]["crossval_fold"]
    assert fold["group_by"] == "source_repo" and fold["group"] == "b"


def test_a_labels_csv_without_the_group_column_is_a_clear_error(side_data, tmp_path):
    a, b = _grouped_side_folders(tmp_path, side_data)
    code = cli_main(["crossval", "--task", "side", "--arch", "wearnet", "--data", str(a), str(b), "--group-by",
                     "photographer", "--epochs", "1", "--output-dir", str(tmp_path / "cv"), "--no-progress"])
    assert code == 2


def test_an_unreadable_kinds_file_is_a_clear_command_line_error(side_data, tmp_path, capsys):
    kinds = tmp_path / "kinds.csv"
    kinds.write_text("path,source\nx.png,web\n")  # neither 'file' nor 'kind'
    code = cli_main(["crossval", "--task", "side", "--arch", "wearnet", "--data", str(side_data), "--kinds",
                     str(kinds), "--epochs", "1", "--output-dir", str(tmp_path / "cv"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "expected a CSV with 'file' and 'kind' columns" in err and "Traceback" not in err


def test_crossval_corrections_train_every_fold_but_never_on_a_copy_of_a_held_out_photo(side_data, tmp_path):
    from phonegrade.corrections import CorrectionStore, Prediction

    photos = sorted((side_data / "train" / "front").glob("*.png"))[:2]
    store = CorrectionStore(tmp_path / "corrections").ensure()
    shown = Prediction({"front": 0.4, "back": 0.3, "none": 0.3}, {})
    # One correction of a resized, re-encoded copy of a data photo, one of a photo the data does not hold.
    copy = Image.open(photos[0]).convert("RGB").resize((64, 64))
    store.add(copy, shown, corrected_side="back", consent=True)
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)  # like no photo of the data
    store.add(Image.fromarray(noise), shown, corrected_side="none", consent=True)
    out = tmp_path / "cv"
    assert cli_main(["crossval", "--task", "side", "--arch", "wearnet", "--data", str(side_data), "--folds", "2",
                     "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0", "--corrections",
                     str(store.root), "--corrections-all", "--output-dir", str(out), "--no-progress"]) == 0
    with open(out / "predictions.csv") as f:
        held_out_in = {r["image"]: r["fold"] for r in csv.DictReader(f)}
    original_fold = held_out_in[str(photos[0])]
    for fold in ("1", "2"):
        used = json.loads((out / f"fold-0-{fold}" / "config.json").read_text())["corrections"]
        if fold == original_fold:  # the copy of a held-out photo stays out; the other correction trains
            assert (used["added_train"], used["skipped_in_val"]) == (1, 1)
        else:  # the original photo trains in this fold: its correction relabels nothing (a copy) and trains too
            assert (used["added_train"], used["skipped_in_val"]) == (2, 0)
