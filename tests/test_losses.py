import math

import torch
import torch.nn.functional as F

from phonegrade.losses import balanced_class_weights, focal_loss


def test_focal_loss_matches_a_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    targets = torch.tensor([0, 2])
    # p_0 of row 1 = e^2 / (e^2 + 1 + e^-1); row 2 is uniform, p = 1/3.
    p1 = math.exp(2) / (math.exp(2) + 1 + math.exp(-1))
    p2 = 1 / 3
    expected = (-(1 - p1) ** 2 * math.log(p1) - (1 - p2) ** 2 * math.log(p2)) / 2
    assert math.isclose(focal_loss(logits, targets, gamma=2.0).item(), expected, rel_tol=1e-6)


def test_focal_loss_with_gamma_zero_equals_cross_entropy():
    torch.manual_seed(0)
    logits, targets = torch.randn(16, 3), torch.randint(0, 3, (16,))
    assert torch.allclose(focal_loss(logits, targets, gamma=0.0), F.cross_entropy(logits, targets))


def test_focal_loss_class_weights_scale_each_example():
    torch.manual_seed(1)
    logits, targets = torch.randn(8, 3), torch.randint(0, 3, (8,))
    weights = torch.tensor([1.0, 2.0, 0.5])
    unweighted = -F.log_softmax(logits, 1).gather(1, targets[:, None]).squeeze(1)
    expected = (unweighted * weights[targets]).mean()
    assert torch.allclose(focal_loss(logits, targets, gamma=0.0, class_weights=weights), expected)


def test_focal_loss_down_weights_confident_correct_predictions():
    confident = torch.tensor([[5.0, 0.0, 0.0]])
    target = torch.tensor([0])
    assert focal_loss(confident, target, gamma=2.0) < 0.01 * F.cross_entropy(confident, target)


def test_balanced_class_weights_follow_inverse_frequency():
    assert torch.allclose(balanced_class_weights([10, 20, 30]), torch.tensor([2.0, 1.0, 2 / 3]))


def test_balanced_class_weights_balance_the_classes_present_and_give_an_absent_class_none():
    # A leave-one-group-out fold may hold out every photo of a class: the others are balanced among themselves.
    assert torch.allclose(balanced_class_weights([10, 0, 30]), torch.tensor([2.0, 0.0, 2 / 3]))


def test_focal_loss_of_one_hot_soft_targets_equals_the_hard_label_loss():
    torch.manual_seed(2)
    logits, targets = torch.randn(8, 3), torch.randint(0, 3, (8,))
    weights = torch.tensor([1.0, 2.0, 0.5])
    soft = F.one_hot(targets, 3).float()
    assert torch.allclose(focal_loss(logits, soft, 2.0, weights), focal_loss(logits, targets, 2.0, weights))


def test_focal_loss_of_mixed_targets_mixes_the_two_label_losses():
    # MixUp's targets: lam of one label, 1 - lam of another; the loss is linear in the targets.
    torch.manual_seed(3)
    logits = torch.randn(4, 3)
    a, b, lam = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2]), 0.3
    mixed = lam * F.one_hot(a, 3).float() + (1 - lam) * F.one_hot(b, 3).float()
    expected = lam * focal_loss(logits, a, 2.0) + (1 - lam) * focal_loss(logits, b, 2.0)
    assert torch.allclose(focal_loss(logits, mixed, 2.0), expected)
