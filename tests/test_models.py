import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from phonegrade.models import ARCHS, PretrainedWeightsError, create_model


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_runs_forward_and_backward_at_small_size(arch):
    torch.manual_seed(0)
    model = create_model(arch, num_classes=3).train()
    logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 3)
    logits.sum().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)


def test_head_is_pool_flatten_two_dense_blocks_and_linear():
    head = create_model("mobilenet_v2").head
    kinds = [type(m) for m in head]
    assert kinds == [nn.AdaptiveAvgPool2d, nn.Flatten,
                     nn.Linear, nn.BatchNorm1d, nn.PReLU, nn.Dropout,
                     nn.Linear, nn.BatchNorm1d, nn.PReLU, nn.Dropout,
                     nn.Linear]
    assert head[0].output_size == 1
    assert all(m.p == 0.5 for m in head if isinstance(m, nn.Dropout))
    assert head[2].in_features == 1280 and head[-1].out_features == 3


@pytest.mark.parametrize("arch", ["wearnet+resnet50", "wearnet+densenet121"])
def test_ensembles_feed_both_trunks_into_one_head(arch):
    model = create_model(arch)
    backbone_channels = {"wearnet+resnet50": 2048, "wearnet+densenet121": 1024}[arch]
    assert model.side_blocks is not None
    assert model.head[2].in_features == backbone_channels + 256


def test_wearnet_is_small():
    trunk_params = sum(p.numel() for p in create_model("wearnet").blocks.parameters())
    assert trunk_params < 1_000_000


def test_trainable_blocks_freezes_everything_below_the_top_k():
    model = create_model("resnet50", trainable_blocks=2)
    flags = [all(p.requires_grad for p in b.parameters()) for b in model.blocks]
    assert flags == [False, False, False, True, True]
    assert all(p.requires_grad for p in model.head.parameters())


def test_frozen_blocks_keep_batchnorm_statistics_while_training():
    model = create_model("mobilenet_v2", trainable_blocks=1).train()
    assert not model.blocks[0].training and model.blocks[-1].training
    frozen_bn = next(m for m in model.blocks[0].modules() if isinstance(m, nn.BatchNorm2d))
    before = frozen_bn.running_mean.clone()
    model(torch.randn(4, 3, 64, 64))
    assert torch.equal(before, frozen_bn.running_mean)


def test_training_from_scratch_trains_all_blocks_by_default():
    model = create_model("densenet121", weights="none")
    assert model.frozen_blocks == 0


def test_weights_from_a_local_safetensors_state_dict(tmp_path):
    import torchvision

    reference = torchvision.models.mobilenet_v2(weights=None)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, tmp_path / "mnv2.safetensors")
    model = create_model("mobilenet_v2", weights=str(tmp_path / "mnv2.safetensors"))
    assert torch.equal(model.blocks[0][0].weight, reference.features[0][0].weight)
    assert model.frozen_blocks > 0  # pretrained: the per-arch default freezes the early blocks


def test_weights_from_a_mismatched_state_dict_are_refused(tmp_path):
    save_file({"unrelated": torch.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(PretrainedWeightsError, match="does not match mobilenet_v2"):
        create_model("mobilenet_v2", weights=str(tmp_path / "other.safetensors"))


def test_offline_imagenet_weights_fail_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # a closed port: the download cannot succeed
    with pytest.raises(PretrainedWeightsError) as info:
        create_model("mobilenet_v2", weights="imagenet")
    message = str(info.value)
    assert "mobilenet_v2-7ebf99e0.pth" in message and "--weights none" in message and str(tmp_path) in message


def test_unknown_arch_lists_the_registry():
    with pytest.raises(ValueError, match="choose one of resnet50, mobilenet_v2"):
        create_model("vgg16")


def test_wearnet_refuses_imagenet_weights():
    with pytest.raises(PretrainedWeightsError, match="wearnet has no pretrained weights"):
        create_model("wearnet", weights="imagenet")


@pytest.mark.parametrize("arch", ARCHS)
def test_folded_batchnorm_gives_the_same_probabilities(arch):
    from phonegrade import PhoneGradeClassifier

    torch.manual_seed(0)
    classifier = PhoneGradeClassifier({"task": "side", "arch": arch, "labels": ["front", "back", "none"],
                                       "image_size": 64})
    for module in classifier.modules():  # BatchNorm statistics away from the identity, as after training
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    classifier.eval()
    folded = classifier.folded_net()
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(folded(pixels).softmax(1), classifier(pixels).softmax(1), atol=1e-5)
    def batchnorms(module):
        return sum(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())

    # Kept: a BatchNorm after a concatenation (WearNet's multi-scale blocks) or before its convolution (DenseNet).
    expected = {"resnet50": 0, "mobilenet_v2": 0, "wearnet": 4, "wearnet+resnet50": 4, "wearnet+mobilenet_v2": 4}
    if arch in expected:
        assert batchnorms(folded) == expected[arch]
    assert batchnorms(folded) < batchnorms(classifier)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in folded.modules())  # the head's


def test_folded_net_is_reused_until_the_weights_change(trained_side_model):
    from phonegrade import PhoneGradeClassifier

    classifier = PhoneGradeClassifier.from_pretrained(trained_side_model)
    folded = classifier.folded_net()
    assert classifier.folded_net() is folded
    pixels = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        classifier.net.head[-1].bias.add_(1.0)  # as an optimizer step or load_state_dict would
        refreshed = classifier.folded_net()
        assert refreshed is not folded
        assert torch.allclose(refreshed(pixels), classifier(pixels), atol=1e-5)
    assert classifier.predict_proba(pixels, fold_batchnorm=True).allclose(classifier.predict_proba(pixels), atol=1e-5)
    with torch.inference_mode():  # weights loaded here are inference tensors, which keep no update count
        loaded = PhoneGradeClassifier.from_pretrained(trained_side_model)
        assert loaded.predict_proba(pixels, fold_batchnorm=True).allclose(loaded.predict_proba(pixels), atol=1e-5)
