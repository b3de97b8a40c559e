"""Where in a photo the evidence for a grade lies: Grad-CAM heatmaps (Selvaraju et al., 2017) for any
`PhoneGradeClassifier`, ensembles included, and the heatmap laid over the photo in colour.

Grad-CAM weighs each channel of the feature map that the head reads by the gradient of the explained label's
logit with respect to that channel, sums the channels, and keeps the positive part: the places that raise the
label's score. For WearNet+backbone archs the map is the concatenation of both trunks; an ensemble's heatmap is
the mean of its members' heatmaps.

Safe to call from several threads on one model: nothing is registered on the model or changed in it (no hooks,
no switch to training mode, gradients taken for the feature map only, never into the weights' `.grad`).
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .classifier import PhoneGradeClassifier
from .errors import ConfigError
from .images import load_image
from .models import MeanProbabilityEnsemble
from .transforms import Preprocessing

ImageInput = str | os.PathLike | bytes | Image.Image

# Blue, cyan, green, yellow, red: a jet-like ramp for the overlay, from no evidence to the strongest.
_RAMP = np.array([[0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]], dtype=np.float32)


def _class_activation(features: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of one network: the channels weighted by their mean gradient, summed, positive part, max 1."""
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * features).sum(dim=1))[0]
    peak = cam.max()
    return cam / peak if peak > 0 else cam


def _in_photo(cam: torch.Tensor, photo_size: tuple[int, int], out_size: tuple[int, int],
              preprocessing: Preprocessing) -> np.ndarray:
    """The model-input map placed where the model's input came from in the photo, at `out_size` (width, height).

    Outside the input's box (`Preprocessing.input_box`: a centre crop, with crop_pct below 1) the photo has no
    evidence (0)."""
    width, height = out_size
    left, top, right, bottom = preprocessing.input_box(photo_size)
    scale_x, scale_y = width / photo_size[0], height / photo_size[1]
    side_w, side_h = round((right - left) * scale_x), round((bottom - top) * scale_y)
    box_left, box_top = (width - side_w) // 2, (height - side_h) // 2  # centred, as the crop is
    box = (box_left, box_top, box_left + side_w, box_top + side_h)
    heat = np.zeros((height, width), dtype=np.float32)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    if box_w > 0 and box_h > 0:
        resized = F.interpolate(cam[None, None], size=(box_h, box_w), mode="bilinear", align_corners=False)
        heat[box[1]:box[3], box[0]:box[2]] = resized[0, 0].clamp(0, 1).cpu().numpy()
    return heat


def heatmap(classifier: PhoneGradeClassifier, image: ImageInput, label: str | None = None,
            size: tuple[int, int] | None = None) -> tuple[np.ndarray, str]:
    """Grad-CAM heatmap of `label` (default: the predicted one) for a photo (a path, bytes or PIL image).

    Returns (height × width float32 array in [0, 1], the label explained); the map is at the photo's upright
    size, or at `size` (width, height). For the scratch model, explaining the damage class the caller cares
    about (say major_scratch) is often more useful than the prediction. The classifier must be in eval mode, as
    `from_pretrained` returns it: switching modes here would race other threads using the model.
    """
    if any(module.training for module in classifier.modules()):
        raise ValueError("explain a classifier in eval mode (call .eval() first)")
    if label is not None and label not in classifier.labels:
        raise ConfigError(f"unknown label {label!r} for the {classifier.task} model; choose one of "
                          f"{', '.join(classifier.labels)}")
    photo = load_image(image)
    net = classifier.net
    nets = list(net.members) if isinstance(net, MeanProbabilityEnsemble) else [net]
    # Inference mode off in case the caller is in it: the head needs a graph for the gradient.
    with torch.inference_mode(False):
        pixels = classifier.transform(photo).unsqueeze(0).to(classifier.device)
        with torch.no_grad():  # the trunk needs no graph: Grad-CAM differentiates the head only
            features = [member.features(pixels) for member in nets]
        for feature_map in features:
            feature_map.requires_grad_()
        with torch.enable_grad():
            logits = [member.classify(feature_map)[0] for member, feature_map in zip(nets, features, strict=True)]
            probabilities = torch.stack([member_logits.softmax(dim=0) for member_logits in logits]).mean(dim=0)
            index = classifier.labels.index(label) if label is not None else int(probabilities.argmax())
            # One backward for all members: each member's score depends on its own feature map only.
            gradients = torch.autograd.grad([member_logits[index] for member_logits in logits], features)
        cams = [_class_activation(feature_map.detach(), gradient)
                for feature_map, gradient in zip(features, gradients, strict=True)]
        cam = torch.stack(cams).mean(dim=0)
        peak = cam.max()
        cam = cam / peak if peak > 0 else cam
    return _in_photo(cam, photo.size, size or photo.size, classifier.preprocessing), classifier.labels[index]


def colourise(heat: np.ndarray) -> np.ndarray:
    """A heatmap in [0, 1] as height × width × 3 uint8 colours along the blue-to-red ramp."""
    position = np.clip(heat, 0, 1) * (len(_RAMP) - 1)
    low = np.minimum(position.astype(np.int64), len(_RAMP) - 2)
    fraction = (position - low)[..., None]
    return (_RAMP[low] * (1 - fraction) + _RAMP[low + 1] * fraction).round().astype(np.uint8)


def overlay(image: ImageInput, heat: np.ndarray, opacity: float = 0.6) -> Image.Image:
    """The heatmap's colours blended over the photo, more opaque where the evidence is stronger: places with
    none show the photo as it is."""
    photo = load_image(image)
    if heat.shape != (photo.height, photo.width):
        raise ValueError(f"heatmap is {heat.shape[1]}×{heat.shape[0]}, the photo {photo.width}×{photo.height}")
    alpha = opacity * np.clip(heat, 0, 1)[..., None]
    blended = np.asarray(photo, dtype=np.float32) * (1 - alpha) + colourise(heat) * alpha
    return Image.fromarray(blended.round().astype(np.uint8))


def explanation_png(classifier: PhoneGradeClassifier, image: ImageInput, label: str | None = None,
                    max_side: int = 1024) -> tuple[bytes, str]:
    """The heatmap over the photo as PNG bytes (at most `max_side` pixels long), and the label explained."""
    photo = load_image(image)
    shown = photo.copy()
    shown.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    heat, explained = heatmap(classifier, photo, label, size=shown.size)
    buffer = io.BytesIO()
    overlay(shown, heat).save(buffer, format="PNG")
    return buffer.getvalue(), explained
