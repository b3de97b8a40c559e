"""`PhoneGradeClassifier`: a trained model with its preprocessing, saved as and loaded from a Hub-style folder.

A model folder (or Hub model repo) holds `model.safetensors`, `config.json` and a `README.md` card.
Weights are read from safetensors only: pickled checkpoints are refused, never unpickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from .config import ModelConfig
from .errors import ConfigError, ModelLoadError
from .hub import CONFIG_NAME, WEIGHTS_NAME, snapshot_folder
from .inference import image_sources, probabilities_or_raise
from .models import MeanProbabilityEnsemble, count_parameters, create_model, fold_batchnorm
from .transforms import eval_transform, load_photo

_PICKLE_NAMES = ("pytorch_model.bin", "model.bin", "model.pt", "model.pth", "pytorch_model.pt")


def save_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """A module's state dict as a safetensors file (the only weight format phonegrade writes or reads)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})


class PhoneGradeClassifier(nn.Module):
    """A phonegrade model plus everything needed to use it: labels, input size and normalisation.

    >>> m = PhoneGradeClassifier.from_pretrained("runs/side")          # or a Hub id
    >>> m.predict(["phone.jpg"])  # [{"front": 0.97, "back": 0.02, "none": 0.01}]
    """

    def __init__(self, config: ModelConfig | dict):
        super().__init__()
        self.config = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        def member():
            return create_model(self.arch, len(self.labels), weights="none", phone_prior=self.config.phone_prior,
                                phone_classes=self.config.phone_classes,
                                none_index=self.labels.index("none") if "none" in self.labels else 0)

        self.net = member() if self.members == 1 else MeanProbabilityEnsemble([member() for _ in range(self.members)])
        self.transform = eval_transform(self.preprocessing)
        self.source: str | None = None  # where it was loaded from, for display
        self.revision: str | None = None  # the Hub commit it came from
        self.folder: Path | None = None  # the folder its files were read from (a Hub model's: in the cache)
        self._folded: tuple[tuple, nn.Module] | None = None  # (weights fingerprint, folded copy of net)
        self._fold_lock = threading.Lock()

    task = property(lambda self: self.config.task)
    arch = property(lambda self: self.config.arch)
    labels = property(lambda self: list(self.config.labels))
    image_size = property(lambda self: self.config.image_size)
    preprocessing = property(lambda self: self.config.preprocessing)
    members = property(lambda self: self.config.members)  # > 1: a MeanProbabilityEnsemble

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels)

    def folded_net(self) -> nn.Module:
        """A copy of the network for inference with every BatchNorm folded into the convolution or linear layer
        before it (`models.fold_batchnorm`): one pass less over each activation map (MobileNetV2, ResNet50 and
        EfficientNet are full of them), the same outputs to float rounding. Made on first use and again after the
        weights change (a new tensor or an in-place update of any of them; weights made under
        `torch.inference_mode` keep no update count, so there only a new tensor counts); `self.net` is left as it
        is, for training and saving. Safe to call from several threads."""
        tensors = [*self.net.parameters(), *self.net.buffers()]
        fingerprint = tuple((t.device, t.data_ptr(), None if t.is_inference() else t._version) for t in tensors)
        with self._fold_lock:
            if self._folded is None or self._folded[0] != fingerprint:
                example = torch.zeros(1, 3, self.image_size, self.image_size, device=self.device)
                self._folded = (fingerprint, fold_batchnorm(self.net, example))
            return self._folded[1]

    # ------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, repo_or_dir: str | os.PathLike, revision: str | None = None,
                        token: str | bool | None = None, cache_dir: str | None = None,
                        device: str | torch.device = "cpu") -> PhoneGradeClassifier:
        """Load from a local folder or a Hub model repo id; the model comes back in eval mode."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder, sha = snapshot_folder(repo_or_dir, revision, token, cache_dir)
        config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        if not weights_path.is_file():
            pickles = [name for name in _PICKLE_NAMES if (folder / name).exists()]
            hint = (f" It holds {pickles[0]}, a pickled checkpoint: phonegrade loads safetensors only, because "
                    f"unpickling can run arbitrary code. Convert it where you trust it." if pickles else "")
            raise ModelLoadError(f"{repo_or_dir}: no {WEIGHTS_NAME}.{hint}")
        if not config_path.is_file():
            raise ModelLoadError(f"{repo_or_dir}: no {CONFIG_NAME}")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelLoadError(f"{repo_or_dir}: config.json is not valid JSON ({err})") from err
        model = cls(ModelConfig.from_dict(config, str(repo_or_dir)))
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as err:
            raise ModelLoadError(f"{repo_or_dir}: {WEIGHTS_NAME} is unreadable ({err})") from err
        try:
            model.net.load_state_dict(state)
        except RuntimeError as err:
            raise ModelLoadError(f"{repo_or_dir}: weights do not fit config.json (arch {model.arch}, "
                                 f"{len(model.labels)} labels): {str(err).splitlines()[0]}") from err
        model.source, model.revision, model.folder = str(repo_or_dir), sha, folder
        return model.to(device).eval()

    def model_revision(self) -> str:
        """The Hub commit it came from, or for a local folder the start of its weights' SHA-256 ("" if unsaved)."""
        if self.revision:
            return self.revision
        weights = self.folder / WEIGHTS_NAME if self.folder is not None else None
        if weights is None or not weights.is_file():
            return ""
        return "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()[:12]

    @classmethod
    def from_members(cls, members: list[PhoneGradeClassifier], **changes) -> PhoneGradeClassifier:
        """An ensemble averaging the probabilities of trained single models that share task, architecture and
        preprocessing. Its config is the first member's, less that member's own measurements (`metrics`,
        `crossval`); `changes` replace ModelConfig fields, e.g. `data` with a description."""
        if len(members) < 2:
            raise ConfigError("an ensemble needs at least two member models")
        first = members[0]
        for member in members:
            if member.members != 1:
                raise ConfigError(f"{member.source}: is itself an ensemble; pass its single models instead")
            for key, value in member.config.model_inputs().items():
                if value != first.config.model_inputs()[key]:
                    raise ConfigError(f"ensemble members must share {key}: {first.source} has "
                                      f"{first.config.model_inputs()[key]!r}, {member.source} has {value!r}")
        model = cls(dataclasses.replace(first.config.provenance(), members=len(members), **changes))
        for slot, member in zip(model.net.members, members, strict=True):
            slot.load_state_dict(member.net.state_dict())
        model.config.num_parameters = count_parameters(model.net)
        return model.eval()

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write model.safetensors and config.json (the card is written by `write_model_card`)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(self.net, folder / WEIGHTS_NAME)
        (folder / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        return folder

    # ------------------------------------------------------------ inference

    def preprocess(self, images: Iterable[str | os.PathLike | bytes | Image.Image | torch.Tensor]) -> torch.Tensor:
        """Paths, bytes and PIL images are decoded and transformed; tensors are taken as already preprocessed
        (C×H×W or N×C×H×W, normalised, at the model's image size)."""
        tensors = []
        for image in images:
            if isinstance(image, torch.Tensor):
                tensors.extend(image if image.dim() == 4 else [image])
            else:
                tensors.append(self.transform(load_photo(image, self.image_size)))
        if not tensors:
            return torch.empty(0, 3, self.image_size, self.image_size)
        return torch.stack(tensors)

    def predict_proba(self, images, batch_size: int = 32, workers: int = 0, channels_last: bool = False,
                      fold_batchnorm: bool = False) -> torch.Tensor:
        """N × labels probabilities. `images`: one image, a sequence of them, or a `datasets.Dataset` with an
        image column. For large sets: `workers` > 0 decodes and resizes in that many DataLoader processes;
        `channels_last` (converting the weights in place) and `fold_batchnorm` (`folded_net`) run the network
        faster. Both change probabilities in the last bits (about 1e-7 and 1e-6), so by default they are off
        and the numbers stay the ones the model gave in training."""

        was_training = self.training
        try:
            return probabilities_or_raise(self, image_sources(images), batch_size, workers,
                                          channels_last=channels_last, fold_batchnorm=fold_batchnorm)
        finally:
            if self.training != was_training:  # train() walks every module: not on each photo's prediction
                self.train(was_training)

    def predict(self, images, batch_size: int = 32, workers: int = 0, channels_last: bool = False,
                fold_batchnorm: bool = False) -> list[dict[str, float]]:
        """Per-image {label: probability} dicts, in label order (arguments as for `predict_proba`)."""
        probs = self.predict_proba(images, batch_size, workers, channels_last, fold_batchnorm)
        return [{label: float(p) for label, p in zip(self.labels, row, strict=True)} for row in probs]
