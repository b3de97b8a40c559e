"""The Hugging Face Hub, and how sources are named: model snapshots (with the commit they came from), pushing model
folders, the commit a dataset repo is read at, and names for configs and cards that are never local paths."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from .defaults import DEFAULT_MODEL_FOLDERS
from .errors import ConfigError, DataError, ModelLoadError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
# Files of a model folder that belong on the Hub; training checkpoints stay local.
MODEL_FILES = [WEIGHTS_NAME, CONFIG_NAME, CARD_NAME, "LICENSE", "metrics.json", "confusion_matrix.png",
               "training_log.jsonl"]


def display_name(source: str | os.PathLike) -> str:
    """How a data or model source is named in configs, cards and on the demo page: a Hub id as it is, a local
    folder by its own name (the rest of a local path means nothing on another machine)."""
    path = Path(source)
    return path.resolve().name if path.exists() else str(source)


def network_errors() -> tuple[type[BaseException], ...]:
    """What a Hub call raises when the Hub is down or cannot be reached: huggingface_hub's HTTP errors, OSError, and
    its HTTP client's transport errors (a refused or timed-out connection), which huggingface_hub passes on as they
    are: httpx's in huggingface_hub 1.x, httpx2's in 2.x."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError]
    for client in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(client).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def looks_like_local_path(source: str | os.PathLike) -> bool:
    """True for a name that can only be a local path (./x, /x, a/b/c), never a Hub repo id (user/name)."""
    return str(source).startswith((".", "/")) or str(source).count("/") > 1


def resolve_dataset_revision(repo_id: str, revision: str | None = None) -> str:
    """The commit a Hub dataset repo's `revision` (default: its main branch) points at now, so that what is
    read, and recorded, is one fixed version."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    try:
        return HfApi().dataset_info(repo_id, revision=revision).sha
    except HFValidationError as err:
        raise DataError(f"{repo_id}: not a valid Hub dataset id ({str(err).splitlines()[0]})") from err
    except RepositoryNotFoundError as err:
        raise DataError(f"{repo_id}: no such dataset repo on the Hub (or no access)") from err
    except network_errors() as err:
        raise DataError(f"could not reach the Hub for dataset {repo_id} ({err.__class__.__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}); check the network or HF_ENDPOINT, or "
                         f"use a local copy") from err


def snapshot_folder(repo_or_dir: str | os.PathLike, revision: str | None, token: str | bool | None,
                   cache_dir: str | None) -> tuple[Path, str | None]:
    """The folder holding a model: a local folder as it is, an embedded default by its name (side-default,
    scratch-default) where no folder has that name, or a snapshot of a Hub model repo's files (HF_ENDPOINT
    honoured), with the commit they came from (None for a local folder)."""
    path = Path(repo_or_dir)
    if path.is_dir():
        return path, None
    default = DEFAULT_MODEL_FOLDERS.get(str(repo_or_dir))
    if default is not None:
        return default, None
    if path.exists() or looks_like_local_path(repo_or_dir):
        raise ModelLoadError(f"{repo_or_dir}: not a model folder, and not a Hub repo id (user/name) or the name of "
                             f"an embedded default ({', '.join(DEFAULT_MODEL_FOLDERS)})")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(str(repo_or_dir), revision=revision, token=token, cache_dir=cache_dir,
                                   allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, CARD_NAME], library_name="phonegrade")
    except RepositoryNotFoundError as err:
        raise ModelLoadError(f"{repo_or_dir}: no such model repo on {_endpoint()} (or no access)") from err
    except (LocalEntryNotFoundError, *network_errors()) as err:
        raise ModelLoadError(f"could not download {repo_or_dir} from {_endpoint()}: {err}. Check the network "
                             f"(or HF_ENDPOINT), or pass a local model folder.") from err
    # The snapshot folder is named after the commit its files came from: exact, and known offline too.
    folder = Path(folder)
    return folder, folder.name if folder.parent.name == "snapshots" else revision


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def check_may_push(repo_id: str, replace: bool = False, token: str | None = None) -> None:
    """Refuse (ConfigError) to push to a Hub repo that already holds a model, unless `replace`: a new model should
    pass `phonegrade promote` (or the user say --force) before it replaces the one people use."""
    from huggingface_hub import HfApi

    if replace:
        return
    try:
        holds = HfApi(token=token).file_exists(repo_id, WEIGHTS_NAME, repo_type="model")
    except network_errors() as err:
        raise ModelLoadError(f"could not reach the Hub to check {repo_id} ({err.__class__.__name__}); check the "
                             f"network or HF_ENDPOINT") from err
    if holds:
        raise ConfigError(f"{repo_id} already holds a model: pushing would replace it unchecked. Compare the two "
                          f"first (`phonegrade promote ... --push-to-hub {repo_id}`), or pass --force to replace it")


def push_model_folder(folder: str | os.PathLike, repo_id: str, private: bool = False,
                      token: str | None = None, commit_message: str = "Upload phonegrade model",
                      replace: bool = False) -> str:
    """Create (if needed) and upload a model folder to a Hub repo; returns the commit URL. A repo that holds a
    model already is refused unless `replace` (`check_may_push`)."""
    from huggingface_hub import HfApi

    check_may_push(repo_id, replace, token)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                             allow_patterns=MODEL_FILES, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
