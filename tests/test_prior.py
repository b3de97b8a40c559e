"""The side model's ImageNet phone prior (phonegrade.models.prior)."""

import json
import math

import pytest
import torch

from phonegrade.classifier import PhoneGradeClassifier
from phonegrade.errors import ModelLoadError
from phonegrade.models.prior import FORMER_PHONE_CLASSES, PHONE_CLASSES, PhonePrior

from .conftest import run_train


def test_the_prior_raises_none_by_the_log_shortfall_of_the_phone_probability_and_only_below_the_threshold():
    prior = PhonePrior(in_features=4, num_classes=3, none_index=2, threshold=0.05)
    with torch.no_grad():
        prior.imagenet.weight.zero_()
        prior.imagenet.bias.zero_()
        prior.imagenet.bias[list(PHONE_CLASSES)] = torch.tensor([2.0, 0.0])
        prior.imagenet.bias[590] = 3.0  # hand-held computer: not counted
    features = torch.zeros(1, 4, 2, 2)
    p_phone = (math.exp(2) + 1) / (math.exp(2) + math.exp(3) + 998)  # the two phone classes of a thousand
    assert prior.phone_log_probability(features).exp().item() == pytest.approx(p_phone, rel=1e-5)
    logits = torch.tensor([[1.0, 0.5, -1.0]])
    assert p_phone < 0.05
    assert torch.allclose(prior(features, logits), logits + torch.tensor([[0, 0, math.log(0.05 / p_phone)]]))
    sure = PhonePrior(4, 3, 2, threshold=p_phone / 2)  # a phone-like enough photo: nothing changes
    sure.load_state_dict(prior.state_dict())
    assert torch.equal(sure(features, logits), logits)


def test_a_side_model_with_the_prior_trains_on_a_frozen_trunk_and_applies_it_only_when_predicting(side_data,
                                                                                                 tmp_path):
    out = tmp_path / "prior"
    common = ["--task", "side", "--arch", "efficientnet_lite0", "--weights", "imagenet", "--data", str(side_data),
              "--epochs", "1", "--image-size", "64", "--workers", "0", "--no-augment", "--cache-features"]
    run_train([*common, "--trainable-blocks", "0", "--phone-prior", "0.05", "--output-dir", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["phone_prior"] == 0.05 and config["training"]["phone_prior"] == 0.05
    assert config["phone_classes"] == list(PHONE_CLASSES) == [487, 605]
    model = PhoneGradeClassifier.from_pretrained(out)
    assert model.net.prior.classes.tolist() == [487, 605]
    pixels = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        features = model.net.features(pixels)
        head_only = model.net.head(features)
        boost = torch.relu(math.log(0.05) - model.net.prior.phone_log_probability(features))
        assert torch.allclose(model(pixels), head_only + boost[:, None] * torch.tensor([0.0, 0.0, 1.0]), atol=1e-5)
        assert (boost > 0).any()  # noise is nothing phone-like: the prior acts on it
        # Training sees the head alone: the prior is evidence at prediction time, not something to learn around.
        model.net.train()
        torch.manual_seed(0)
        trained_on = model.net(pixels)
        torch.manual_seed(0)
        assert torch.equal(trained_on, model.net.head(model.net.features(pixels)))
    result = run_train([*common, "--trainable-blocks", "2", "--phone-prior", "0.05", "--output-dir",
                        str(tmp_path / "refused")], check=False)
    assert result.returncode == 2 and "--trainable-blocks 0" in result.stderr


def test_calibrating_a_model_with_the_prior_divides_all_of_its_logits():
    from phonegrade.calibration import apply_temperature
    from phonegrade.models import create_model

    net = create_model("efficientnet_lite0", 3, weights="imagenet", trainable_blocks=0, phone_prior=0.05).eval()
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = net(pixels)
        apply_temperature(net, 1.6)
        assert torch.allclose(net(pixels), before / 1.6, atol=1e-5)
    restored = create_model("efficientnet_lite0", 3, weights="none", trainable_blocks=0, phone_prior=0.05).eval()
    restored.load_state_dict(net.state_dict())  # the prior's scale is saved with the weights
    with torch.no_grad():
        assert torch.allclose(restored(pixels), before / 1.6, atol=1e-5)


def test_a_model_keeps_the_phone_classes_it_was_trained_with_and_older_models_the_three_they_counted(side_data,
                                                                                                   tmp_path):
    out = tmp_path / "prior"
    run_train(["--task", "side", "--arch", "efficientnet_lite0", "--weights", "imagenet", "--data", str(side_data),
               "--epochs", "1", "--image-size", "64", "--workers", "0", "--no-augment", "--cache-features",
               "--trainable-blocks", "0", "--phone-prior", "0.05", "--phone-classes", "487", "590",
               "--output-dir", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["phone_classes"] == [487, 590] and config["training"]["phone_classes"] == [487, 590]
    assert "cellular telephone (487), hand-held computer (590)" in (out / "README.md").read_text()
    model = PhoneGradeClassifier.from_pretrained(out)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.net.features(pixels)
        imagenet = torch.log_softmax(model.net.prior.imagenet(features.mean(dim=(2, 3))), dim=1)
        assert torch.allclose(model.net.prior.phone_log_probability(features), imagenet[:, [487, 590]].logsumexp(1))

    del config["phone_classes"]  # written before the classes were recorded
    (out / "config.json").write_text(json.dumps(config))
    assert PhoneGradeClassifier.from_pretrained(out).net.prior.classes.tolist() == list(FORMER_PHONE_CLASSES)

    config["phone_classes"] = [487, 1000]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="phone classes must be distinct ImageNet class indices"):
        PhoneGradeClassifier.from_pretrained(out)


def test_phone_classes_outside_imagenet_are_refused_before_training(side_data, tmp_path):
    result = run_train(["--task", "side", "--data", str(side_data), "--phone-prior", "0.05", "--phone-classes",
                        "487", "487", "--output-dir", str(tmp_path / "out")], check=False)
    assert result.returncode == 2 and "phone classes must be distinct" in result.stderr


def test_a_model_recorded_without_phone_classes_counts_as_made_with_the_former_three():
    from phonegrade.train_config import TrainConfig

    recipe = TrainConfig(task="side", data="d", output_dir="o", phone_prior=0.05)
    made = {key: getattr(recipe, key) for key in TrainConfig.RECORDED} | {"weights": recipe.resolved_weights()}
    assert recipe.differences(made, []) == []
    former = {key: value for key, value in made.items() if key != "phone_classes"}
    assert recipe.differences(former, []) == ["phone_classes"]
    # Without the prior the classes count for nothing.
    assert TrainConfig(task="side", data="d", output_dir="o").differences(former | {"phone_prior": None}, []) == []
