"""`PhoneGradeClassifier`: a trained model with its preprocessing, saved as and loaded from a Hub-style folder.

A model folder (or Hub model repo) holds `model.safetensors`, `config.json` and a `README.md` card.
Weights are read from safetensors only: pickled checkpoints are refused, never unpickled.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from .data import ImageLoadError, Preprocessing, decode_side, eval_transform, load_image
from .labels import labels_for_task
from .models import MeanProbabilityEnsemble, check_arch, count_parameters, create_model, fold_batchnorm

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
# Files of a model folder that belong on the Hub; training checkpoints stay local.
MODEL_FILES = [WEIGHTS_NAME, CONFIG_NAME, CARD_NAME, "metrics.json", "confusion_matrix.png", "training_log.jsonl"]
_PICKLE_NAMES = ("pytorch_model.bin", "model.bin", "model.pt", "model.pth", "pytorch_model.pt")


class ModelLoadError(RuntimeError):
    """A model folder or repo is missing, corrupt, or not a phonegrade model."""


def _validated_config(config: object, where: str) -> dict:
    if not isinstance(config, dict):
        raise ModelLoadError(f"{where}: config.json must hold a JSON object")
    for key in ("task", "arch", "labels", "image_size"):
        if key not in config:
            raise ModelLoadError(f"{where}: config.json lacks {key!r}; is this a phonegrade model?")
    try:
        check_arch(config["arch"])
    except ValueError as err:
        raise ModelLoadError(f"{where}: config.json names {err}") from None
    try:
        expected = labels_for_task(config["task"])
    except ValueError as err:
        raise ModelLoadError(f"{where}: {err}") from None
    if list(config["labels"]) != list(expected):
        raise ModelLoadError(f"{where}: labels {config['labels']} do not match task {config['task']!r} "
                             f"({list(expected)})")
    if not isinstance(config["image_size"], int) or not 16 <= config["image_size"] <= 1024:
        raise ModelLoadError(f"{where}: image_size must be an integer between 16 and 1024")
    try:
        Preprocessing.from_config(config)
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"{where}: config.json has unusable preprocessing ({err})") from None
    members = config.get("members", 1)
    if not isinstance(members, int) or isinstance(members, bool) or not 1 <= members <= 16:
        raise ModelLoadError(f"{where}: members (ensemble size) must be an integer between 1 and 16")
    return config


def _resolve_files(repo_or_dir: str | os.PathLike, revision: str | None, token: str | bool | None,
                   cache_dir: str | None) -> tuple[Path, str | None]:
    """Local folder, or a snapshot of a Hub repo (HF_ENDPOINT honoured). Returns (folder, revision)."""
    path = Path(repo_or_dir)
    if path.is_dir():
        return path, None
    if path.exists() or str(repo_or_dir).startswith((".", "/")) or str(repo_or_dir).count("/") > 1:
        raise ModelLoadError(f"{repo_or_dir}: not a model folder, and not a Hub repo id (user/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(str(repo_or_dir), revision=revision, token=token, cache_dir=cache_dir,
                                   allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, CARD_NAME], library_name="phonegrade")
    except RepositoryNotFoundError as err:
        raise ModelLoadError(f"{repo_or_dir}: no such model repo on {_endpoint()} (or no access)") from err
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise ModelLoadError(f"could not download {repo_or_dir} from {_endpoint()}: {err}. Check the network "
                             f"(or HF_ENDPOINT), or pass a local model folder.") from err
    # The snapshot folder is named after the commit its files came from: exact, and known offline too.
    folder = Path(folder)
    return folder, folder.name if folder.parent.name == "snapshots" else revision


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


class PhoneGradeClassifier(nn.Module):
    """A phonegrade model plus everything needed to use it: labels, input size and normalisation.

    >>> m = PhoneGradeClassifier.from_pretrained("runs/side")          # or a Hub id
    >>> m.predict(["phone.jpg"])  # [{"front": 0.97, "back": 0.02, "none": 0.01}]
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = _validated_config(dict(config), "config")
        if self.members == 1:
            self.net = create_model(self.arch, len(self.labels), weights="none")
        else:
            self.net = MeanProbabilityEnsemble([create_model(self.arch, len(self.labels), weights="none")
                                                for _ in range(self.members)])
        self.preprocessing = Preprocessing.from_config(self.config)
        self.transform = eval_transform(self.preprocessing)
        self.source: str | None = None  # where it was loaded from, for display
        self.revision: str | None = None
        self._folded: tuple[tuple, nn.Module] | None = None  # (weights fingerprint, folded copy of net)
        self._fold_lock = threading.Lock()

    task = property(lambda self: self.config["task"])
    arch = property(lambda self: self.config["arch"])
    labels = property(lambda self: list(self.config["labels"]))
    image_size = property(lambda self: self.config["image_size"])
    members = property(lambda self: self.config.get("members", 1))  # > 1: a MeanProbabilityEnsemble

    def model_inputs(self) -> dict:
        """What decides which pixels the network sees and what its outputs mean: task, arch, labels and
        preprocessing."""
        return {"task": self.task, "arch": self.arch, "labels": self.labels, **self.preprocessing.to_config()}

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

        folder, sha = _resolve_files(repo_or_dir, revision, token, cache_dir)
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
        model = cls(_validated_config(config, str(repo_or_dir)))
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as err:
            raise ModelLoadError(f"{repo_or_dir}: {WEIGHTS_NAME} is unreadable ({err})") from err
        try:
            model.net.load_state_dict(state)
        except RuntimeError as err:
            raise ModelLoadError(f"{repo_or_dir}: weights do not fit config.json (arch {model.arch}, "
                                 f"{len(model.labels)} labels): {str(err).splitlines()[0]}") from err
        model.source, model.revision = str(repo_or_dir), sha
        return model.to(device).eval()

    @classmethod
    def from_members(cls, members: list[PhoneGradeClassifier], config: dict | None = None) -> PhoneGradeClassifier:
        """An ensemble averaging the probabilities of trained single models that share task, architecture and
        preprocessing. Its config is the first member's, less that member's own measurements (`metrics`,
        `crossval`); `config` adds to it or overrides it, e.g. a data description."""
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two member models")
        first = members[0]
        for member in members:
            if member.members != 1:
                raise ValueError(f"{member.source}: is itself an ensemble; pass its single models instead")
            for key, value in member.model_inputs().items():
                if value != first.model_inputs()[key]:
                    raise ValueError(f"ensemble members must share {key}: {first.source} has "
                                     f"{first.model_inputs()[key]!r}, {member.source} has {value!r}")
        inherited = {k: v for k, v in first.config.items() if k not in ("metrics", "crossval")}
        model = cls({**inherited, "members": len(members), **(config or {})})
        for slot, member in zip(model.net.members, members, strict=True):
            slot.load_state_dict(member.net.state_dict())
        model.config["num_parameters"] = count_parameters(model.net)
        return model.eval()

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write model.safetensors and config.json (the card is written by `write_model_card`)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
        (folder / CONFIG_NAME).write_text(json.dumps(self.config, indent=2) + "\n")
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
                tensors.append(self.transform(load_image(image, min_side=decode_side(self.image_size))))
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
        from .predict import image_sources, iter_probabilities

        was_training = self.training
        try:
            rows = []
            for row, error in iter_probabilities(self, image_sources(images), batch_size, workers,
                                                 channels_last=channels_last, fold_batchnorm=fold_batchnorm):
                if error:
                    raise ImageLoadError(error)
                rows.append(row)
            return torch.stack(rows) if rows else torch.empty(0, len(self.labels))
        finally:
            self.train(was_training)

    def predict(self, images, batch_size: int = 32, workers: int = 0, channels_last: bool = False,
                fold_batchnorm: bool = False) -> list[dict[str, float]]:
        """Per-image {label: probability} dicts, in label order (arguments as for `predict_proba`)."""
        probs = self.predict_proba(images, batch_size, workers, channels_last, fold_batchnorm)
        return [{label: float(p) for label, p in zip(self.labels, row, strict=True)} for row in probs]


# ---------------------------------------------------------------- cards and pushing

def render_card(template_name: str, card_data, **values) -> str:
    """Fill a Jinja template of hub_cards/ (installed as package data) with huggingface_hub's card machinery
    (YAML header included)."""
    from importlib.resources import files

    from huggingface_hub import ModelCard

    template = (files("phonegrade.hub_cards") / template_name).read_text(encoding="utf-8")
    return str(ModelCard.from_template(card_data, template_str=template, **values))


def write_model_card(folder: str | os.PathLike, config: dict, metrics: dict, base_model: str | None = None) -> Path:
    from huggingface_hub import EvalResult, ModelCardData

    task_name = {"side": "phone side (front / back / none)", "scratch": "screen scratch grade"}[config["task"]]
    # Dataset fields name a Hub dataset only when the data was one (it then has a revision); local data is named
    # by its folder's name, never its path.
    dataset = config.get("dataset") or "custom"
    hub_dataset = dataset if config.get("dataset_revision") else None
    card_data = ModelCardData(
        library_name="phonegrade",
        license="apache-2.0",
        tags=["image-classification", "phonegrade", config["task"], config["arch"]],
        pipeline_tag="image-classification",
        datasets=[hub_dataset] if hub_dataset else None,
        eval_results=[EvalResult(task_type="image-classification", dataset_type=dataset, dataset_name=dataset,
                                 dataset_split=config.get("dataset_split") or "validation",
                                 dataset_revision=config.get("dataset_revision"), metric_type="accuracy",
                                 metric_value=round(metrics["accuracy"], 4))],
        model_name=f"phonegrade-{config['task']}-{config['arch']}",
        base_model=base_model,
    )
    text = render_card("model_card.md", card_data, config=config, metrics=metrics, task_name=task_name)
    path = Path(folder) / CARD_NAME
    path.write_text(text, encoding="utf-8")
    return path


def push_model_folder(folder: str | os.PathLike, repo_id: str, private: bool = False,
                      token: str | None = None, commit_message: str = "Upload phonegrade model") -> str:
    """Create (if needed) and upload a model folder to a Hub repo; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                             allow_patterns=MODEL_FILES, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
