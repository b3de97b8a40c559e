import argparse
import json

import pytest
import torch

from phonegrade import PhoneGradeClassifier
from phonegrade.losses import focal_loss
from phonegrade.models import TrainableTop, create_model
from phonegrade.training import check_feature_caching

from .conftest import run_train


def loss_and_gradients(model, forward, pixels, targets):
    model.zero_grad(set_to_none=True)
    loss = focal_loss(forward(pixels), targets, 2.0)
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def every_block_with_autograd(model, pixels):
    """The forward pass as it was before the frozen prefix ran under no_grad."""
    out = pixels
    for block in model.blocks:
        out = block(out)
    return model.head(out)


@pytest.mark.parametrize("arch", ["mobilenet_v2", "resnet50"])
def test_frozen_prefix_runs_without_autograd_and_trains_the_same(arch):
    torch.manual_seed(0)
    model = create_model(arch, trainable_blocks=2).train()
    pixels, targets = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 1])

    grad_mode = {}
    for i, block in enumerate(model.blocks):
        block.register_forward_pre_hook(lambda module, args, i=i: grad_mode.__setitem__(i, torch.is_grad_enabled()))
    torch.manual_seed(1)  # the same dropout masks for both passes
    loss, gradients = loss_and_gradients(model, model, pixels, targets)
    assert [grad_mode[i] for i in range(len(model.blocks))] == [False] * model.frozen_blocks + [True, True]
    torch.manual_seed(1)
    reference_loss, reference_gradients = loss_and_gradients(model, lambda x: every_block_with_autograd(model, x),
                                                             pixels, targets)
    assert loss == pytest.approx(reference_loss, abs=1e-6)
    assert gradients.keys() == reference_gradients.keys()
    assert all(not name.startswith(("blocks.0.", "blocks.1.")) for name in gradients)  # frozen: no gradients
    for name, grad in gradients.items():
        torch.testing.assert_close(grad, reference_gradients[name], rtol=1e-4, atol=1e-6)


def test_unfreezing_gives_every_block_gradients_again():
    model = create_model("mobilenet_v2", trainable_blocks=2).train()
    model.freeze(len(model.blocks))  # what --unfreeze-at does
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_input_gradients_still_flow_through_frozen_blocks():
    model = create_model("mobilenet_v2", trainable_blocks=2).eval()
    pixels = torch.randn(1, 3, 32, 32, requires_grad=True)  # e.g. a saliency map
    model(pixels)[0, 0].backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0


def test_trainable_top_on_frozen_features_equals_the_whole_net():
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", trainable_blocks=5).eval()
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(TrainableTop(model)(model.frozen_features(pixels)), model(pixels))


def caching_args(**overrides) -> argparse.Namespace:
    return argparse.Namespace(**{"no_augment": True, "unfreeze_at": None, "arch": "mobilenet_v2", "mixup_alpha": 0.0,
                                 "cutmix_alpha": 0.0, **overrides})


@pytest.mark.parametrize(("arch", "trainable", "overrides", "message"), [
    ("mobilenet_v2", 5, {"no_augment": False}, "add --no-augment"),
    ("mobilenet_v2", 5, {"unfreeze_at": 3}, "--unfreeze-at makes the frozen blocks train later"),
    ("mobilenet_v2", None, {}, "no backbone block is frozen"),
    ("wearnet+mobilenet_v2", 5, {"arch": "wearnet+mobilenet_v2"}, r"side trunk of wearnet\+mobilenet_v2"),
    ("mobilenet_v2", 5, {"cutmix_alpha": 1.0}, "--cutmix-alpha mix the images themselves"),
])
def test_cache_features_refuses_what_it_cannot_cache(arch, trainable, overrides, message):
    model = create_model(arch, trainable_blocks=trainable)
    with pytest.raises(ValueError, match=message):
        check_feature_caching(model, caching_args(**overrides))
    check_feature_caching(create_model("mobilenet_v2", trainable_blocks=5), caching_args())


def test_cache_features_trains_exactly_like_the_uncached_loop(side_data, tmp_path):
    common = ["--task", "side", "--arch", "mobilenet_v2", "--weights", "none", "--trainable-blocks", "5",
              "--data", str(side_data), "--epochs", "2", "--image-size", "32", "--batch-size", "8", "--workers", "0",
              "--no-augment"]
    run_train([*common, "--output-dir", str(tmp_path / "plain")])
    cached = run_train([*common, "--cache-features", "--output-dir", str(tmp_path / "cached")])
    assert "epoch 2/2" in cached.stdout

    logs = [[json.loads(line) for line in (tmp_path / name / "training_log.jsonl").read_text().splitlines()]
            for name in ("plain", "cached")]
    for plain, fast in zip(*logs, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert fast[key] == pytest.approx(plain[key], abs=1e-4), key
    model = PhoneGradeClassifier.from_pretrained(tmp_path / "cached")
    assert model.config.training["cache_features"] is True
    assert len(model.predict(sorted((side_data / "val").rglob("*.png")))) == 6


def test_mirror_padding_without_augmentation_adds_padded_copies_that_features_are_cached_for(side_data, tmp_path):
    # 30 training photos; at P 1 every one gets a padded copy beside it, at P 0.5 about half do.
    common = ["--task", "side", "--arch", "mobilenet_v2", "--weights", "none", "--trainable-blocks", "5",
              "--data", str(side_data), "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0",
              "--no-augment", "--cache-features"]
    every = run_train([*common, "--mirror-pad", "1", "--output-dir", str(tmp_path / "every")])
    assert "output for 60 train and 6 val images" in every.stdout
    some = run_train([*common, "--mirror-pad", "0.5", "--output-dir", str(tmp_path / "some")])
    cached = int(some.stdout.split("output for ")[1].split(" train")[0])
    assert 30 < cached < 60
    model = PhoneGradeClassifier.from_pretrained(tmp_path / "every")
    assert model.config.training["mirror_pad"] == 1.0
    card = (tmp_path / "every" / "README.md").read_text()
    assert "mirror-padded copies of a share 1.0 of the training photos" in card
