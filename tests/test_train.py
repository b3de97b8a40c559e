import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from phonegrade import PhoneGradeClassifier
from phonegrade.cli import main as cli_main
from phonegrade.data import load_splits
from phonegrade.metrics import compute_metrics
from phonegrade.models import create_model

from .conftest import run_train

METRIC_KEYS = {"task", "arch", "accuracy", "macro_f1", "labels", "confusion_matrix", "per_class", "n_val"}


def test_accelerate_launch_writes_a_hub_style_model_folder(trained_side_model):
    for name in ("model.safetensors", "config.json", "README.md", "metrics.json", "confusion_matrix.png"):
        assert (trained_side_model / name).is_file(), name
    metrics = json.loads((trained_side_model / "metrics.json").read_text())
    assert set(metrics) == METRIC_KEYS
    assert set(metrics["per_class"]["front"]) == {"precision", "recall", "f1", "support"}
    config = json.loads((trained_side_model / "config.json").read_text())
    assert config["task"] == "side" and config["arch"] == "wearnet" and config["labels"] == ["front", "back", "none"]
    assert config["training"]["epochs"] == 2 and config["metrics"]["accuracy"] == metrics["accuracy"]
    card = (trained_side_model / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: phonegrade" in card
    assert f"Accuracy **{metrics['accuracy']:.3f}**" in card


def test_from_pretrained_reproduces_the_best_checkpoint_and_its_metrics(trained_side_model, side_data):
    model = PhoneGradeClassifier.from_pretrained(trained_side_model)
    assert model.labels == ["front", "back", "none"] and not model.training
    reference = create_model("wearnet", 3)
    reference.load_state_dict(load_file(trained_side_model / "checkpoints" / "best.safetensors"))
    reference.eval()
    pixels = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(model(pixels), reference(pixels))

    val = load_splits(side_data, "side").val
    probs = model.predict([s.load() for s in val])
    predicted = [model.labels.index(max(p, key=p.get)) for p in probs]
    recomputed = compute_metrics([s.label for s in val], predicted, model.labels, "side", "wearnet")
    assert recomputed == json.loads((trained_side_model / "metrics.json").read_text())


def test_resumed_run_ends_like_an_uninterrupted_one(side_data, tmp_path):
    common = ["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--image-size", "32",
              "--batch-size", "8", "--workers", "0", "--seed", "5", "--patience", "0",
              "--ema-decay", "0.8"]  # the weight average is resumed too
    run_train([*common, "--output-dir", str(tmp_path / "full"), "--epochs", "3"])
    run_train([*common, "--output-dir", str(tmp_path / "split"), "--epochs", "1"])
    resumed = run_train([*common, "--output-dir", str(tmp_path / "split"), "--epochs", "3", "--resume"])
    assert "resumed from" in resumed.stdout
    full_log = [json.loads(line) for line in (tmp_path / "full" / "training_log.jsonl").read_text().splitlines()]
    split_log = [json.loads(line) for line in (tmp_path / "split" / "training_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in split_log] == [1, 2, 3]
    for a, b in zip(full_log, split_log, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-4)
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)
    assert json.loads((tmp_path / "full" / "metrics.json").read_text()) == \
        json.loads((tmp_path / "split" / "metrics.json").read_text())


def test_two_processes_share_the_training_images_and_score_every_validation_image_once(side_data, tmp_path):
    result = run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir",
                        str(tmp_path), "--epochs", "1", "--image-size", "32", "--batch-size", "5", "--workers", "0"],
                       launcher="accelerate", processes=2)
    assert "2 processes on cpu" in result.stdout
    splits = load_splits(side_data, "side")
    # Each process trains on its own shard (batches of 5, the last uneven one dropped), not on all the images.
    epoch = json.loads((tmp_path / "training_log.jsonl").read_text().splitlines()[0])
    assert len(splits.train) - 2 * 5 < epoch["train_images"] <= len(splits.train)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    n_val = len(splits.val)
    assert metrics["n_val"] == n_val  # 12 images over 2 processes × batches of 5: padding must not count
    assert sum(map(sum, metrics["confusion_matrix"])) == n_val


def test_offline_imagenet_weights_stop_training_with_a_clear_message(side_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    result = run_train(["--task", "side", "--arch", "mobilenet_v2", "--data", str(side_data),
                        "--output-dir", str(tmp_path / "out"), "--epochs", "1"], check=False)
    assert result.returncode == 2
    assert "could not load ImageNet weights for mobilenet_v2" in result.stderr
    assert "--weights none" in result.stderr and "Traceback" not in result.stderr


def test_unknown_class_folder_stops_training_with_a_clear_message(tmp_path):
    from PIL import Image

    for name in ("front", "back", "none", "tablet"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8)).save(tmp_path / "data" / name / f"{i}.png")
    result = run_train(["--task", "side", "--arch", "wearnet", "--data", str(tmp_path / "data"),
                        "--output-dir", str(tmp_path / "out")], check=False)
    assert result.returncode == 2 and "unknown side class 'tablet'" in result.stderr


def _first_block_state(model):
    return {k: v.clone() for k, v in model.blocks[0].state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("unfreeze_at", [None, 2])
def test_frozen_blocks_stay_put_until_unfrozen(side_data, tmp_path, unfreeze_at):
    from accelerate.utils import set_seed

    args = ["--task", "side", "--arch", "mobilenet_v2", "--weights", "none", "--trainable-blocks", "2",
            "--data", str(side_data), "--output-dir", str(tmp_path), "--epochs", "2", "--image-size", "32",
            "--batch-size", "8", "--workers", "0", "--seed", "3", "--patience", "0"]
    run_train(args + (["--unfreeze-at", str(unfreeze_at)] if unfreeze_at else []))
    set_seed(3)  # training builds its model right after seeding: the same initial weights
    initial = _first_block_state(create_model("mobilenet_v2", 3, weights="none", trainable_blocks=2))
    # The last epoch's weights (the best epoch may predate the unfreezing).
    last = create_model("mobilenet_v2", 3)
    last.load_state_dict(load_file(tmp_path / "checkpoints" / "last" / "model.safetensors"))
    trained = _first_block_state(last)
    same = all(torch.equal(initial[k], trained[k]) for k in initial)
    assert same == (unfreeze_at is None)


def test_early_stopping_class_weights_and_bf16(side_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(side_data, data)
    for label, keep in (("back", 4), ("none", 7)):  # unbalanced: 10 front, 4 back, 7 none
        for path in sorted((data / "train" / label).iterdir())[keep:]:
            path.unlink()
    counts = [len(list((data / "train" / label).iterdir())) for label in ("front", "back", "none")]
    common = ["--task", "side", "--arch", "wearnet", "--data", str(data), "--lr", "0.5", "--image-size", "32",
              "--workers", "0"]
    result = run_train([*common, "--output-dir", str(tmp_path / "both"), "--epochs", "20", "--patience", "1",
                        "--class-weights", "auto", "--mixed-precision", "bf16"])
    config = json.loads((tmp_path / "both" / "config.json").read_text())
    assert "early stop" in result.stdout and config["training"]["epochs_run"] < 20
    assert config["training"]["best_epoch"] <= config["training"]["epochs_run"]
    assert config["training"]["class_weights"] == pytest.approx([sum(counts) / (3 * n) for n in counts], abs=1e-4)
    assert config["training"]["mixed_precision"] == "bf16"

    # Each option changes training, not just the config: first epochs of runs that differ by one option only.
    run_train([*common, "--output-dir", str(tmp_path / "weights"), "--epochs", "1", "--class-weights", "auto"])
    run_train([*common, "--output-dir", str(tmp_path / "plain"), "--epochs", "1"])
    both, weights, plain = (json.loads((tmp_path / name / "training_log.jsonl").read_text().splitlines()[0])
                            for name in ("both", "weights", "plain"))
    # Repeated runs log the same losses (seeded, to the 5 decimals logged); measured: 0.03 apart for the class
    # weights, 0.002 for bf16.
    assert abs(weights["train_loss"] - plain["train_loss"]) > 5e-4  # the class weights
    assert abs(both["train_loss"] - weights["train_loss"]) > 5e-4  # bf16


def test_weight_average_follows_the_ema_formula():
    from argparse import Namespace

    from phonegrade.training import build_weight_average

    model = torch.nn.Linear(2, 1)
    average = build_weight_average(model, Namespace(ema_decay=0.9))
    start = model.weight.detach().clone()
    average.update_parameters(model)  # the first update copies
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update_parameters(model)
    assert torch.allclose(average.module.weight, 0.9 * start + 0.1 * (start + 1.0))
    with pytest.raises(ValueError, match="--ema-decay"):
        build_weight_average(model, Namespace(ema_decay=1.5))


def test_batch_mixing_gives_soft_targets_that_sum_to_one():
    from argparse import Namespace

    from phonegrade.training import build_batch_mixing

    assert build_batch_mixing(Namespace(mixup_alpha=0.0, cutmix_alpha=0.0), 3) is None
    mixing = build_batch_mixing(Namespace(mixup_alpha=0.4, cutmix_alpha=1.0), 3)
    images, targets = mixing(torch.rand(6, 3, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert images.shape == (6, 3, 16, 16) and targets.shape == (6, 3)
    assert torch.allclose(targets.sum(dim=1), torch.ones(6))


def test_mixing_and_weight_average_train_and_keep_the_averaged_weights(side_data, tmp_path):
    run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir", str(tmp_path),
               "--epochs", "2", "--patience", "0", "--image-size", "32", "--workers", "0", "--batch-size", "8",
               "--mixup-alpha", "0.2", "--cutmix-alpha", "1.0", "--ema-decay", "0.5", "--keep", "last"])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["training"]["ema_decay"] == 0.5 and config["training"]["cutmix_alpha"] == 1.0
    # The saved model is the average: the resume checkpoint holds both it and the raw weights, which differ.
    saved = load_file(tmp_path / "model.safetensors")
    raw = load_file(tmp_path / "checkpoints" / "last" / "model.safetensors")
    averaged = load_file(tmp_path / "checkpoints" / "last" / "weight_average.safetensors")
    for name in ("head.10.weight", "blocks.0.0.weight"):
        assert torch.equal(saved[name], averaged["module." + name])
        assert not torch.equal(saved[name], raw[name])


def test_extra_training_images_join_training_only(side_data, tmp_path):
    from phonegrade.synth import write_synthetic_dataset

    extra = tmp_path / "renders"
    write_synthetic_dataset("side", extra, per_class=2, size=32, seed=9, progress=False)
    common = ["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--epochs", "1", "--image-size", "32",
              "--workers", "0"]
    run_train([*common, "--output-dir", str(tmp_path / "plain")])
    result = run_train([*common, "--output-dir", str(tmp_path / "extra"), "--extra-train", str(extra)])
    plain = json.loads((tmp_path / "plain" / "config.json").read_text())
    mixed = json.loads((tmp_path / "extra" / "config.json").read_text())
    assert f"extra training data {extra}: 6 images" in result.stdout
    assert mixed["data"]["n_train"] == plain["data"]["n_train"] + 6
    assert mixed["metrics"]["n_val"] == plain["metrics"]["n_val"]
    # The folder's name, not its path, and how many images of each class it gave.
    assert mixed["data"]["extra_train"] == [
        {"source": "renders", "images": 6, "per_class": {"front": 2, "back": 2, "none": 2}}
    ]
    assert "6 come from `renders`" in (tmp_path / "extra" / "README.md").read_text()


def test_hub_dataset_id_is_a_data_source(tmp_path):
    import datasets
    from PIL import Image

    from .hub_server import HubServer

    images = [Image.new("RGB", (8, 8), (i * 20, 0, 0)) for i in range(9)]
    ds = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"image": images[:6], "label": ["Front", "BACK", "None"] * 2}),
        "validation": datasets.Dataset.from_dict({"image": images[6:], "label": ["front", "back", "none"]}),
    }).cast_column("image", datasets.Image())
    with HubServer() as hub, hub.patch_clients(hf_home=tmp_path / "hf-home"):
        ds.push_to_hub("user/phones")
        splits = load_splits("user/phones", "side")
    assert len(splits.train) == 6 and [s.label for s in splits.val] == [0, 1, 2]
    assert splits.source == "user/phones"


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "timm:resnet18"])
def test_timm_archs_train_and_record_their_preprocessing(arch, side_data, tmp_path):
    """The arch's preprocessing (EfficientNet-Lite: bicubic, mean = std = 0.5) is recorded and used by the
    loaded model, which scores the validation split as training did."""
    out = tmp_path / "model"
    run_train(["--task", "side", "--arch", arch, "--weights", "none", "--data", str(side_data), "--output-dir",
               str(out), "--epochs", "1", "--image-size", "48", "--crop-pct", "0.875", "--batch-size", "8",
               "--workers", "0"])
    config = json.loads((out / "config.json").read_text())
    expected_mean = [0.5] * 3 if arch.startswith("efficientnet") else [0.485, 0.456, 0.406]
    assert (config["arch"], config["interpolation"], config["crop_pct"], config["mean"]) == \
        (arch, "bicubic", 0.875, expected_mean)
    model = PhoneGradeClassifier.from_pretrained(out)
    assert model.preprocessing.crop_pct == 0.875 and model.preprocessing.mean == tuple(expected_mean)
    val = load_splits(side_data, "side").val
    predicted = [model.labels.index(max(p, key=p.get)) for p in model.predict([s.load() for s in val])]
    accuracy = sum(p == s.label for p, s in zip(predicted, val, strict=True)) / len(val)
    assert accuracy == pytest.approx(config["metrics"]["accuracy"])


def test_a_recipe_file_supplies_options_and_the_command_line_overrides_them(tmp_path, capsys):
    from phonegrade.cli import build_parser
    from phonegrade.commands import apply_recipe
    from phonegrade.errors import ConfigError
    from phonegrade.train_config import TrainConfig

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("task: scratch\narch: wearnet\nepochs: 3\nimage-size: 64\nextra_train: [renders=front]\n")
    argv = ["train", "--config", str(recipe), "--data", "d", "--output-dir", "o", "--epochs", "5"]
    parser = build_parser()
    apply_recipe(parser, argv)
    config = TrainConfig.from_options(vars(parser.parse_args(argv)))
    assert (config.task, config.arch, config.image_size, config.extra_train) == ("scratch", "wearnet", 64,
                                                                                 ["renders=front"])
    assert config.epochs == 5  # the command line wins

    recipe.write_text("task: side\nepochz: 3\n")
    with pytest.raises(ConfigError, match="unknown option\\(s\\) epochz"):
        apply_recipe(build_parser(), argv)
    recipe.write_text("task: side\npush_to_hub: user/x\n")  # a single-run option: not for crossval
    with pytest.raises(ConfigError, match="push_to_hub cannot be used with `phonegrade crossval`"):
        apply_recipe(build_parser(), ["crossval", "--config", str(recipe)])
    recipe.write_text("task: side\narch: vgg99\nscheduler: sometimes\n")  # checked as the command line's are
    with pytest.raises(SystemExit) as exited:
        cli_main(["train", "--config", str(recipe), "--data", "d", "--output-dir", str(tmp_path / "o")])
    assert exited.value.code == 2 and "argument --arch: unknown arch 'vgg99'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="scheduler must be one of plateau, cosine, none"):
        TrainConfig(task="side", data="d", output_dir="o", scheduler="sometimes")


@pytest.mark.parametrize("name", ["side-default", "scratch-default"])
def test_the_default_models_recipes_are_installed_and_found_by_name(name):
    from phonegrade.train_config import TrainConfig, load_recipe

    recipe = load_recipe(name)
    config = TrainConfig(data="d", output_dir="o", **recipe)
    assert config.task == name.split("-")[0] and config.resolved_weights() == "imagenet"


def test_loader_workers_default_to_none_on_the_cpu_and_follow_workers_when_given():
    import os

    from phonegrade.train_config import TrainConfig
    from phonegrade.training import loader_workers

    assert loader_workers(TrainConfig(task="side", data="d", output_dir="o"), torch.device("cpu")) == 0
    assert loader_workers(TrainConfig(task="side", data="d", output_dir="o"), torch.device("cuda")) == min(
        4, os.cpu_count() or 1)
    assert loader_workers(TrainConfig(task="side", data="d", output_dir="o", workers=3), torch.device("cpu")) == 3


def test_unset_mixed_precision_is_left_to_accelerate_and_recorded(side_data, tmp_path, monkeypatch):
    from accelerate.state import AcceleratorState

    from phonegrade.cli import main as cli_main

    # `accelerate launch --mixed_precision bf16` (or `accelerate config`) tells the processes so: this variable.
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    # Accelerate keeps one state per process; a training run earlier in this test process would already have fixed
    # it (a real launch starts a fresh process). Accelerate's own tests reset it the same way.
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        assert cli_main(["train", "--task", "side", "--arch", "wearnet", "--data", str(side_data), "--epochs", "1",
                         "--image-size", "32", "--workers", "0", "--no-progress", "--output-dir",
                         str(tmp_path / "m")]) == 0
        assert json.loads((tmp_path / "m" / "config.json").read_text())["training"]["mixed_precision"] == "bf16"
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)  # later tests start from Accelerate's default


def test_the_card_and_license_file_name_the_terms_of_the_weights_and_the_data(side_data, tmp_path):
    from huggingface_hub import ModelCard

    out = tmp_path / "m"
    terms = "MSD lab photos: academic use, cite FDSNet; DataCluster photos: CC BY 4.0, attribution required"
    run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--epochs", "1", "--image-size", "32",
               "--workers", "0", "--output-dir", str(out), "--data-terms", terms])
    card = ModelCard.load(out / "README.md")
    assert (card.data.license, card.data.license_name, card.data.license_link) == (
        "other", "phonegrade-model-terms", "LICENSE")
    license_text = (out / "LICENSE").read_text()
    assert terms in license_text and terms in card.text and "trained from randomly initialised weights" in card.text
    assert json.loads((out / "config.json").read_text())["data"]["terms"] == terms

    run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--epochs", "1", "--image-size", "32",
               "--workers", "0", "--output-dir", str(tmp_path / "n")])
    assert "did not give the terms of its training photos" in (tmp_path / "n" / "LICENSE").read_text()
