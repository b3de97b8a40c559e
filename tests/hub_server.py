"""A small Hugging Face Hub-compatible HTTP server for tests (standard library only).

It lets the tests drive the *real* ``huggingface_hub`` / ``datasets`` client code (create_repo, upload_folder,
upload_file, create_commit, CommitScheduler, snapshot_download, hf_hub_download, model_info / dataset_info /
repo_info, list_repo_files / list_repo_tree, HfFileSystem, ``datasets.load_dataset(repo_id)``,
``Dataset.push_to_hub`` / ``DatasetDict.push_to_hub``) against ``http://127.0.0.1:<port>`` instead of
huggingface.co. Written against huggingface_hub 2.4.0 and datasets 5.2.0.

Usage::

    from tests.hub_server import HubServer

    with HubServer() as hub, hub.patch_clients(hf_home=tmp_path / "hf-home"):
        HfApi().create_repo("user/model")
        HfApi().upload_folder(repo_id="user/model", folder_path=folder)
        snapshot_download("user/model")

For a subprocess, pass ``env={**os.environ, **hub.client_env(hf_home)}`` (``patch_clients`` also exports the
same variables into ``os.environ`` while it is active, so subprocesses started inside it inherit them).

Pointing the clients at the server
----------------------------------
Both libraries read their settings from environment variables *once, at import time*:

* ``huggingface_hub.constants.ENDPOINT`` and ``HUGGINGFACE_CO_URL_TEMPLATE`` (used by ``hf_hub_url``, hence
  by every download) come from ``HF_ENDPOINT``; so does ``HF_URL_HOSTS``.
* ``huggingface_hub.hf_api.api`` is a module-level ``HfApi()`` created at import: the module-level functions
  (``huggingface_hub.create_repo``, ``model_info``, ``upload_folder``, ...) are its bound methods, so they keep
  the import-time endpoint in ``api.endpoint``. ``huggingface_hub.hf_file_system.hffs`` is the same for
  ``HfFileSystem``. Every *new* ``HfApi()`` / ``HfFileSystem()`` reads ``constants.ENDPOINT`` when created
  (so an ``HfApi`` object made before patching keeps the old endpoint).
* ``huggingface_hub.utils._http._HUB_ORIGINS`` (origins the auth header may be forwarded to on redirects).
* ``HF_HUB_DISABLE_XET``, ``HF_HUB_DISABLE_TELEMETRY``, ``HF_HUB_OFFLINE``, ``HF_HOME`` / ``HF_HUB_CACHE`` /
  ``HF_ASSETS_CACHE`` / ``HF_XET_CACHE`` / ``HF_TOKEN_PATH`` ... are ``huggingface_hub.constants`` attributes
  read at call time, but set from the environment at import.
* ``datasets.config.HF_ENDPOINT`` and ``datasets.config.HUB_DATASETS_URL`` are copied from ``HF_ENDPOINT`` when
  ``datasets`` is imported; every ``HfApi`` / ``HfFileSystem`` that ``datasets`` creates passes
  ``endpoint=config.HF_ENDPOINT`` explicitly, so patching ``huggingface_hub.constants`` alone is NOT enough.
  Its caches (``HF_DATASETS_CACHE``, ``DOWNLOADED_DATASETS_PATH``, ``EXTRACTED_DATASETS_PATH``,
  ``HF_MODULES_CACHE``) come from ``HF_HOME`` at import too.
* ``datasets`` also reaches two other hosts unless told not to: ``increase_load_count`` sends a HEAD to
  s3.amazonaws.com (``config.HF_UPDATE_DOWNLOAD_COUNTS``, env ``HF_UPDATE_DOWNLOAD_COUNTS=0``) and
  ``load_dataset`` asks the dataset viewer at ``datasets-server.<endpoint host>`` for a Parquet export
  (``config.USE_PARQUET_EXPORT``, no environment variable).
* The token is read from ``HF_TOKEN`` at call time (then from ``constants.HF_TOKEN_PATH``).

So there are two correct ways:

1. In a fresh process (a subprocess, or before anything imports ``huggingface_hub`` / ``datasets``): set the
   environment variables of :meth:`HubServer.client_env` (``HF_ENDPOINT``, ``HF_HOME``, ``HF_TOKEN``,
   ``HF_HUB_DISABLE_XET=1``, ``HF_HUB_DISABLE_TELEMETRY=1``, ``HF_UPDATE_DOWNLOAD_COUNTS=0``,
   ``HF_HUB_OFFLINE=0``, ``NO_PROXY=127.0.0.1,localhost`` -- httpx honours ``http(s)_proxy``, which
   ``conftest.run_train`` points at a dead port). The port must therefore be known before the import:
   ``HubServer(port=...)`` accepts a fixed port (``free_port()`` picks one; ``stop()`` drops the clients'
   keep-alive connections, so a server restarted on the same port is seen at once). ``load_dataset`` then still
   tries the Parquet export at ``http://datasets-server.127.0.0.1:<port>`` (a DNS look-up that fails; datasets
   carries on without it); set ``datasets.config.USE_PARQUET_EXPORT = False`` in the child to skip even that.
2. In the pytest process (where other test modules have long imported both libraries): use
   :meth:`HubServer.patch_clients` / :func:`patch_clients`, which sets those environment variables *and*
   patches, restoring everything on exit: ``huggingface_hub.constants.{ENDPOINT, HUGGINGFACE_CO_URL_TEMPLATE,
   HF_URL_HOSTS, HF_HUB_DISABLE_XET, HF_HUB_DISABLE_TELEMETRY, HF_HUB_OFFLINE, HF_HOME, HF_HUB_CACHE,
   HF_ASSETS_CACHE, HF_XET_CACHE, HF_TOKEN_PATH, HF_STORED_TOKENS_PATH, AGENT_HARNESSES_PATH,
   CHECK_FOR_UPDATE_DONE_PATH, CHECK_FOR_SKILL_UPDATE_DONE_PATH}``, ``huggingface_hub.hf_api.api.endpoint``,
   ``huggingface_hub.hf_file_system.hffs.endpoint`` (and its ``_api.endpoint``),
   ``huggingface_hub.utils._http._HUB_ORIGINS``, ``datasets.config.{HF_ENDPOINT, HUB_DATASETS_URL,
   USE_PARQUET_EXPORT=False, HF_UPDATE_DOWNLOAD_COUNTS=False, HF_HUB_OFFLINE, HF_DATASETS_OFFLINE,
   HF_CACHE_HOME, HF_DATASETS_CACHE, DOWNLOADED_DATASETS_PATH, EXTRACTED_DATASETS_PATH, HF_MODULES_CACHE}``;
   it also clears fsspec's ``HfFileSystem`` instance cache (instances cache listings per endpoint).

Xet and LFS
-----------
``hf_xet`` is installed, and with it huggingface_hub uploads every "lfs"-mode file through the Xet CAS protocol
(and ``upload_folder`` always runs its xet pipeline). This server does not implement Xet: **set
``HF_HUB_DISABLE_XET=1`` / ``constants.HF_HUB_DISABLE_XET = True``** (``patch_clients`` does). Without it,
"regular" files still upload fine, but the first "lfs" file fails within a second with
``ConnectionError: ... 501 Not Implemented ... /xet-write-token/main`` (the xet token routes answer 501 with this
hint). With Xet disabled the client falls back to the legacy git-LFS "basic" transfer, which this server
implements. Downloads never use Xet here: the server sends no ``X-Xet-Hash`` header.

The preupload endpoint answers ``"uploadMode": "regular"`` (content base64-encoded inside the commit) for
every path except those matching ``lfs_patterns`` (default: the Hub's default ``.gitattributes`` patterns:
``*.parquet``, ``*.safetensors``, ``*.bin``, images, archives, ...), which answer ``"lfs"``. LFS cannot be
avoided entirely: ``Dataset.push_to_hub`` pre-uploads each Parquet shard with ``preupload_lfs_files`` and then
*deletes the temporary file* before ``create_commit``, so a "regular" shard fails with FileNotFoundError at
commit time. Pass ``lfs_patterns=()`` to get "regular" for everything (fine for upload_folder /
upload_file / CommitScheduler, of any size -- 30 MB files were checked -- but not for push_to_hub). The client
only puts up to 100 MB of regular content in one commit of its xet pipeline (more is split into
"... (part 2)" commits); without Xet one ``create_commit`` carries everything.

Downloads are always served directly (no CDN redirect, no Xet headers): ``X-Repo-Commit``, ``ETag`` (git blob
sha1 for regular files, sha256 for LFS files, like the Hub), ``X-Linked-Etag`` / ``X-Linked-Size`` for LFS
files, ``Content-Length``, ``Accept-Ranges``; ``Range: bytes=a-b`` / ``bytes=a-`` give 206 (416 past the end).

Revision model
--------------
Each repo starts with an "initial commit" holding ``.gitattributes`` (like the Hub). Every commit gets a new
40-hex sha and a full snapshot of the tree; branches (``main`` plus any made with ``create_branch``) point at a
commit. Revisions may be a branch name or a commit sha (full or an unambiguous prefix of >= 7 characters).
Errors carry the Hub's headers: 404 + ``X-Error-Code: RepoNotFound`` (-> ``RepositoryNotFoundError``),
``RevisionNotFound`` (-> ``RevisionNotFoundError``), ``EntryNotFound`` (-> ``RemoteEntryNotFoundError``, an
``EntryNotFoundError``); 401 (``X-Error-Message: Invalid credentials in Authorization header``, a plain
``HfHubHTTPError``) for writes without ``Authorization: Bearer <non-empty token>`` (any token is accepted);
409 for an existing repo / branch; 412 when ``parentCommit`` is not the branch head. Private repos: the flag is
stored, and reading one needs some token (else 401 -> ``RepositoryNotFoundError``). Repo ids must be
``namespace/name`` (``create_repo("name")`` creates ``user/name``). Spaces and pull requests are not supported.

``set_offline(True)`` makes every request answer 503 with ``Retry-After: 0`` (``set_offline(False)`` ends it).
huggingface_hub retries 503 five times for the calls it wraps in ``http_backoff`` -- preupload, the LFS batch
and PUT, tree listings (``list_repo_tree`` / ``list_repo_files`` / ``HfFileSystem``), ``HfFileSystem`` range
reads, the commit of the xet upload pipeline, and the HEAD of an ``hf_hub_download`` whose file is not cached --
sleeping ``Retry-After + 1`` s between tries: such a call fails after ~5 s (~23 s if no ``Retry-After`` were
sent). Other calls (``repo_info``, ``create_repo``, the non-xet commit, ``get_paths_info``) fail at once with
``HfHubHTTPError`` (503). ``hf_hub_download`` of a file already in the cache returns the cached path at once;
an uncached one raises ``LocalEntryNotFoundError``. A ``CommitScheduler`` push that fails raises from
``scheduler.trigger().result()`` (and is logged as "Error while pushing to Hub"); files are only marked as
uploaded after a successful commit, so the next trigger pushes them.

Endpoints (``{type}`` is ``model`` or ``dataset``; ``{repo}`` is ``namespace/name``; ``{rev}`` is URL-quoted
with ``safe=""``; ``{prefix}`` is ``""`` for models and ``datasets/`` for datasets):

======  ===============================================================  ======================================
method  path                                                             client call(s)
======  ===============================================================  ======================================
POST    /api/repos/create                                                create_repo (also CommitScheduler,
                                                                         push_to_hub)
DELETE  /api/repos/delete                                                delete_repo
GET     /api/{type}s/{repo}                                              model_info / dataset_info / repo_info
GET     /api/{type}s/{repo}/revision/{rev}                               same with revision=; snapshot_download,
                                                                         HfFileSystem (repo/revision exists),
                                                                         push_to_hub (parent commit),
                                                                         load_dataset (no README case)
GET     /api/{type}s/{repo}/tree/{rev}[/{path}]?recursive=&expand=       list_repo_tree, list_repo_files,
                                                                         snapshot_download, HfFileSystem.ls /
                                                                         glob / find (load_dataset's data-file
                                                                         resolution, push_to_hub)
POST    /api/{type}s/{repo}/paths-info/{rev}  (form: paths, expand)      get_paths_info, HfFileSystem.info /
                                                                         exists
GET     /api/{type}s/{repo}/refs                                         list_repo_refs
GET     /api/{type}s/{repo}/commits/{rev}                                list_repo_commits, HfFileSystem.info
                                                                         of the root with expand_info
POST    /api/{type}s/{repo}/branch/{branch}  (json: startingPoint)       create_branch (push_to_hub revision=)
DELETE  /api/{type}s/{repo}/branch/{branch}                              delete_branch
POST    /api/{type}s/{repo}/preupload/{rev}                              create_commit / preupload_lfs_files
                                                                         (_fetch_upload_modes), upload_*,
                                                                         CommitScheduler, push_to_hub
POST    /api/{type}s/{repo}/commit/{rev}  (NDJSON: header, file,         create_commit (_send_commit), upload_*,
        lfsFile, deletedFile, deletedFolder)                             delete_file/folder, CommitScheduler,
                                                                         push_to_hub
POST    /{prefix}{repo}.git/info/lfs/objects/batch                       LFS batch (post_lfs_batch_info) for
                                                                         "lfs"-mode files, Xet disabled
PUT     /lfs-upload/{secret}/{sha256}                                    LFS basic single-part upload (href
                                                                         returned by the batch call, no auth)
HEAD    /{prefix}{repo}/resolve/{rev}/{path}                             hf_hub_download / get_hf_file_metadata,
                                                                         snapshot_download, file_exists
GET     /{prefix}{repo}/resolve/{rev}/{path}  (Range supported)          hf_hub_download (http_get),
                                                                         HfFileSystem.open / read / get_file,
                                                                         _fetch_files_to_copy
POST    /api/validate-yaml                                               create_commit with a README.md
                                                                         (non-xet path) -> no errors
GET     /api/whoami-v2                                                   whoami (needs a token)
GET     /api/agent-harnesses                                             user-agent agent detection (only when
                                                                         telemetry is on) -> empty registry
*       /api/{type}s/{repo}/xet-{read|write}-token/{rev}                 Xet (not implemented): 501 + hint
======  ===============================================================  ======================================

Anything else answers 404 ``{"error": ...}``. ``HubServer.requests`` logs ``(method, unquoted path without
query)`` for every request, offline ones included.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["DEFAULT_LFS_PATTERNS", "FAKE_TOKEN", "HubServer", "client_env", "free_port", "patch_clients"]

FAKE_TOKEN = "hf_hubserver_fake_token"

# The Hub's default .gitattributes for new repos (LFS-tracked patterns), images added as for dataset repos.
DEFAULT_LFS_PATTERNS: tuple[str, ...] = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm",
    "*.xz", "*.zip", "*.zst", "*tfevents*", "*.jpg", "*.jpeg", "*.png", "*.webp", "*.gif", "*.mp3", "*.wav",
    "*.mp4",
)

_REPO_TYPES = {"models": "model", "datasets": "dataset"}
_URL_PREFIX = {"model": "", "dataset": "datasets/"}
_INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _check_sha256(oid: Any) -> str:
    oid = str(oid)
    if len(oid) != 64 or any(c not in "0123456789abcdef" for c in oid):
        raise _HttpError(400, f"invalid sha256 oid: {oid[:80]!r}")
    return oid


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on `host` (to know HF_ENDPOINT before starting the server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class _Entry:
    """One file in a commit's tree."""

    sha256: str  # content address in the blob store
    size: int
    oid: str  # git blob id (of the LFS pointer for LFS files)
    lfs: bool
    last_commit: str  # sha of the commit that last changed it


@dataclass
class _Commit:
    sha: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, _Entry]


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)


class _HttpError(Exception):
    """An error answer: JSON {"error": message, **extra} with X-Error-Message (and X-Error-Code if given)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.extra = headers or {}, extra or {}


class HubServer:
    """Hub-compatible HTTP server on a background thread. See the module docstring.

    Args:
        root: folder for blobs (content-addressed files); a temporary folder, removed on `stop()`, if None.
        host, port: where to listen; port 0 picks a free one (see `url`).
        lfs_patterns: glob patterns (on the path and on the file name) answered `"lfs"` by preupload.
        username: namespace used for `create_repo("name")` and returned by whoami.
    """

    def __init__(self, root: Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 lfs_patterns: Sequence[str] = DEFAULT_LFS_PATTERNS, username: str = "user"):
        self._own_root = root is None
        self.root = Path(root) if root is not None else None
        self.host, self.port = host, port
        self.lfs_patterns = tuple(lfs_patterns)
        self.username = username
        self.url = ""
        self.requests: list[tuple[str, str]] = []
        self._offline = False
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._upload_secret = secrets.token_hex(8)
        self._counter = 0
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> HubServer:
        if self._httpd is not None:
            return self
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="hubserver-"))
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"HubServer:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        # Also drop the clients' keep-alive connections: their handler threads would otherwise go on serving
        # this (stopped) hub's state, e.g. to a new HubServer started later on the same port.
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_offline(self, offline: bool) -> None:
        """When True, every request gets a 503 (Retry-After: 0), as when the Hub is down."""
        self._offline = bool(offline)

    # ------------------------------------------------------------------ client configuration
    def client_env(self, hf_home: str | os.PathLike | None = None, token: str | None = FAKE_TOKEN) -> dict[str, str]:
        """Environment variables pointing a fresh process's clients at this server (see `client_env`)."""
        return client_env(self.url, hf_home=hf_home, token=token)

    def patch_clients(self, hf_home: str | os.PathLike | None = None, token: str | None = FAKE_TOKEN):
        """Context manager pointing this process's huggingface_hub / datasets at this server (see `patch_clients`)."""
        return patch_clients(self.url, hf_home=hf_home, token=token)

    # ------------------------------------------------------------------ introspection helpers for tests
    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def head(self, repo_id: str, repo_type: str = "model", branch: str = "main") -> str:
        """Sha of `branch` of a repo."""
        with self._lock:
            return self._repos[(repo_type, repo_id)].branches[branch]

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """Path -> content of every file of a repo at `revision`."""
        with self._lock:
            commit = self._resolve(self._repo(repo_type, repo_id), revision)
            entries = dict(commit.files)
        return {path: self._blob_path(e.sha256).read_bytes() for path, e in entries.items()}

    def commit_titles(self, repo_id: str, repo_type: str = "model", branch: str = "main") -> list[str]:
        """Titles of the commits reachable from `branch`, newest first."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return [c.title for c in self._history(repo, repo.commits[repo.branches[branch]])]

    def files_changed_per_commit(self, repo_id: str, repo_type: str = "model", branch: str = "main") -> list[int]:
        """How many files each commit reachable from `branch` added or changed, newest first."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return [sum(e.last_commit == c.sha for e in c.files.values())
                    for c in self._history(repo, repo.commits[repo.branches[branch]])]

    # ------------------------------------------------------------------ storage
    def _blob_path(self, sha256: str) -> Path:
        assert self.root is not None
        return self.root / "blobs" / sha256

    def _store_blob(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._blob_path(sha256)
        if not path.exists():
            tmp = path.with_name(f"{sha256}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return sha256

    def _is_lfs(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(name, p) for p in self.lfs_patterns)

    def _new_sha(self, *parts: str) -> str:
        with self._lock:
            self._counter += 1
            counter = self._counter
        seed = "\0".join((*parts, str(counter), str(time.time_ns()), self._upload_secret))
        return hashlib.sha1(seed.encode()).hexdigest()

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _HttpError(404, f"Repository Not Found for {repo_type}s/{repo_id}.", "RepoNotFound")
        return repo

    def _resolve(self, repo: _Repo, revision: str) -> _Commit:
        if revision in repo.branches:
            return repo.commits[repo.branches[revision]]
        if revision in repo.commits:
            return repo.commits[revision]
        if len(revision) >= 7 and all(c in "0123456789abcdef" for c in revision):
            matches = [sha for sha in repo.commits if sha.startswith(revision)]
            if len(matches) == 1:
                return repo.commits[matches[0]]
        raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _history(self, repo: _Repo, commit: _Commit) -> list[_Commit]:
        out = []
        current: _Commit | None = commit
        while current is not None:
            out.append(current)
            current = repo.commits.get(current.parent) if current.parent else None
        return out

    def _gitattributes(self) -> bytes:
        lines = [f"{p} filter=lfs diff=lfs merge=lfs -text" for p in self.lfs_patterns]
        return ("\n".join(lines) + "\n").encode()

    def _make_commit(self, repo: _Repo, branch: str, parent: _Commit | None, files: dict[str, _Entry],
                     title: str, message: str, changed: dict[str, Any]) -> _Commit:
        sha = self._new_sha(repo.repo_type, repo.repo_id, branch, title)
        new_files = {path: (_Entry(e.sha256, e.size, e.oid, e.lfs, sha) if path in changed else e)
                     for path, e in files.items()}
        commit = _Commit(sha, parent.sha if parent else None, title, message, _now(), new_files)
        repo.commits[sha] = commit
        repo.branches[branch] = sha
        return commit

    def _entry_for(self, path: str, data: bytes) -> _Entry:
        """Store a "regular" upload; a path matching lfs_patterns is recorded as an LFS file, as the Hub would."""
        sha256, size = self._store_blob(data), len(data)
        if self._is_lfs(path):
            return _Entry(sha256, size, _git_blob_sha1(_lfs_pointer(sha256, size)), True, "")
        return _Entry(sha256, size, _git_blob_sha1(data), False, "")

    # ------------------------------------------------------------------ JSON views
    def _last_commit_json(self, repo: _Repo, sha: str) -> dict[str, str]:
        commit = repo.commits[sha]
        return {"id": commit.sha, "title": commit.title, "date": commit.date}

    def _file_json(self, repo: _Repo, path: str, entry: _Entry, expand: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
        if entry.lfs:
            out["lfs"] = {"oid": entry.sha256, "size": entry.size,
                          "pointerSize": len(_lfs_pointer(entry.sha256, entry.size))}
        if expand:
            out["lastCommit"] = self._last_commit_json(repo, entry.last_commit)
        return out

    def _folder_json(self, repo: _Repo, commit: _Commit, path: str, expand: bool) -> dict[str, Any]:
        prefix = path + "/"
        children = sorted((p, e) for p, e in commit.files.items() if p.startswith(prefix))
        tree_id = hashlib.sha1("\n".join(f"{p}:{e.oid}" for p, e in children).encode()).hexdigest()
        out: dict[str, Any] = {"type": "directory", "oid": tree_id, "size": 0, "path": path}
        if expand and children:
            latest = max((repo.commits[e.last_commit] for _, e in children), key=lambda c: c.date)
            out["lastCommit"] = self._last_commit_json(repo, latest.sha)
        return out

    @staticmethod
    def _dirs(files: dict[str, _Entry]) -> set[str]:
        dirs = set()
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return dirs

    def _repo_info_json(self, repo: _Repo, commit: _Commit, blobs: bool) -> dict[str, Any]:
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=entry.size, blobId=entry.oid)
                if entry.lfs:
                    sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size,
                                      "pointerSize": len(_lfs_pointer(entry.sha256, entry.size))}
            siblings.append(sibling)
        namespace = repo.repo_id.split("/")[0]
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id, "author": namespace, "sha": commit.sha, "lastModified": commit.date,
            "createdAt": repo.created_at, "private": repo.private, "disabled": False, "gated": False,
            "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.files.values()),
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return info


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubServer/1.0"
    server_hub: HubServer  # set by HubServer.start on a subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server_hub._lock:
            self.server_hub._connections.add(self.connection)

    def finish(self) -> None:
        with self.server_hub._lock:
            self.server_hub._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    # -------------------------------------------------------------- plumbing
    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline().split(b";")[0].strip()
                size = int(size_line or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", content_type)
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():  # header values must be latin-1, on one line
            self.send_header(key, " ".join(str(value).encode("ascii", "backslashreplace").decode().split()))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, err: _HttpError) -> None:
        headers = {"X-Error-Message": err.message, **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._json({"error": err.message, **err.extra}, err.status, headers)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            return token or None
        return None

    def _require_token(self) -> None:
        if self._token() is None:
            raise _HttpError(401, _INVALID_CREDENTIALS)

    def _dispatch(self, method: str) -> None:
        hub = self.server_hub
        split = urlsplit(self.path)
        raw_path = split.path
        hub.requests.append((method, unquote(raw_path)))
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        if hub._offline:
            self._json({"error": "Service Unavailable (HubServer offline)"}, 503, {"Retry-After": "0"})
            return
        query = parse_qs(split.query, keep_blank_values=True)
        segments = raw_path.strip("/").split("/") if raw_path.strip("/") else []
        try:
            self._route(method, segments, query, body)
        except _HttpError as err:
            self._error(err)
        except Exception as err:  # noqa: BLE001 - a server bug must answer, never hang the client
            traceback.print_exc(file=sys.stderr)
            self._json({"error": f"HubServer internal error: {type(err).__name__}: {err}"}, 500)

    # -------------------------------------------------------------- routing
    def _route(self, method: str, seg: list[str], query: dict[str, list[str]], body: bytes) -> None:
        if seg[:1] == ["api"]:
            return self._route_api(method, seg[1:], query, body)
        if len(seg) == 3 and seg[0] == "lfs-upload" and method == "PUT":
            return self._lfs_upload(seg[1], seg[2], body)
        # /{prefix}{ns}/{name}.git/info/lfs/objects/batch
        repo_type = "model"
        rest = seg
        if seg[:1] == ["datasets"]:
            repo_type, rest = "dataset", seg[1:]
        if (len(rest) == 6 and rest[1].endswith(".git") and rest[2:] == ["info", "lfs", "objects", "batch"]
                and method == "POST"):
            return self._lfs_batch(repo_type, f"{unquote(rest[0])}/{unquote(rest[1][:-4])}", body)
        if len(rest) >= 5 and rest[2] == "resolve" and method in ("GET", "HEAD"):
            repo_id = f"{unquote(rest[0])}/{unquote(rest[1])}"
            return self._resolve_file(repo_type, repo_id, unquote(rest[3]), unquote("/".join(rest[4:])))
        raise _HttpError(404, f"HubServer: no route for {method} /{'/'.join(seg)}")

    def _route_api(self, method: str, seg: list[str], query: dict[str, list[str]], body: bytes) -> None:
        hub = self.server_hub
        if seg == ["repos", "create"] and method == "POST":
            return self._create_repo(body)
        if seg == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo(body)
        if seg == ["whoami-v2"] and method in ("GET", "HEAD"):
            self._require_token()
            return self._json({"type": "user", "id": "0" * 24, "name": hub.username, "fullname": hub.username,
                               "email": None, "canPay": False, "isPro": False, "orgs": [],
                               "auth": {"type": "access_token",
                                        "accessToken": {"displayName": "hubserver", "role": "write"}}})
        if seg == ["validate-yaml"] and method == "POST":
            return self._json({"errors": [], "warnings": []})
        if seg == ["agent-harnesses"] and method in ("GET", "HEAD"):
            return self._json({"standardEnvVars": [], "harnesses": {}})
        if len(seg) < 3 or seg[0] not in _REPO_TYPES:
            raise _HttpError(404, f"HubServer: no route for {method} /api/{'/'.join(seg)}")
        repo_type = _REPO_TYPES[seg[0]]
        repo_id = f"{unquote(seg[1])}/{unquote(seg[2])}"
        rest = seg[3:]
        flag = (query.get("expand") or ["false"])[-1].lower() in ("1", "true")
        if not rest and method in ("GET", "HEAD"):
            return self._repo_info(repo_type, repo_id, "main", query)
        action = rest[0] if rest else ""
        if action == "revision" and len(rest) >= 2 and method in ("GET", "HEAD"):
            return self._repo_info(repo_type, repo_id, unquote("/".join(rest[1:])), query)
        if action == "tree" and len(rest) >= 2 and method in ("GET", "HEAD"):
            recursive = (query.get("recursive") or ["false"])[-1].lower() in ("1", "true")
            return self._tree(repo_type, repo_id, unquote(rest[1]), unquote("/".join(rest[2:])), recursive, flag)
        if action == "paths-info" and len(rest) >= 2 and method == "POST":
            return self._paths_info(repo_type, repo_id, unquote("/".join(rest[1:])), body)
        if action == "refs" and method in ("GET", "HEAD"):
            return self._refs(repo_type, repo_id)
        if action == "commits" and len(rest) >= 2 and method in ("GET", "HEAD"):
            return self._commits(repo_type, repo_id, unquote("/".join(rest[1:])))
        if action == "branch" and len(rest) >= 2 and method in ("POST", "DELETE"):
            return self._branch(method, repo_type, repo_id, unquote("/".join(rest[1:])), body)
        if action == "preupload" and len(rest) >= 2 and method == "POST":
            return self._preupload(repo_type, repo_id, unquote("/".join(rest[1:])), query, body)
        if action == "commit" and len(rest) >= 2 and method == "POST":
            return self._commit(repo_type, repo_id, unquote("/".join(rest[1:])), query, body)
        if action.startswith("xet-"):
            raise _HttpError(501, "HubServer does not implement Xet storage: set HF_HUB_DISABLE_XET=1 "
                                  "(huggingface_hub.constants.HF_HUB_DISABLE_XET = True) to use git-LFS.")
        raise _HttpError(404, f"HubServer: no route for {method} /api/{'/'.join(seg)}")

    # -------------------------------------------------------------- repo access
    def _readable_repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self.server_hub._repo(repo_type, repo_id)
        if repo.private and self._token() is None:
            raise _HttpError(401, f"Repository Not Found for {repo_type}s/{repo_id}.", "RepoNotFound")
        return repo

    def _create_repo(self, body: bytes) -> None:
        self._require_token()
        hub = self.server_hub
        payload = json.loads(body or b"{}")
        name = payload.get("name")
        if not name:
            raise _HttpError(400, "name is required")
        namespace = payload.get("organization") or hub.username
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise _HttpError(400, f"HubServer supports repo types model and dataset, not {repo_type!r}")
        repo_id = f"{namespace}/{name}"
        url = f"{hub.url}/{_URL_PREFIX[repo_type]}{repo_id}"
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        with hub._lock:
            if (repo_type, repo_id) in hub._repos:
                # huggingface_hub reads `url` from the body even when exist_ok=True swallows the 409.
                raise _HttpError(409, f"You already created this {repo_type} repo", extra={"url": url})
            repo = _Repo(repo_type, repo_id, private, _now())
            attributes = ".gitattributes"
            data = hub._gitattributes()
            sha256 = hub._store_blob(data)
            entry = _Entry(sha256, len(data), _git_blob_sha1(data), False, "")
            hub._make_commit(repo, "main", None, {attributes: entry}, "initial commit", "",
                             {attributes: True})
            hub._repos[(repo_type, repo_id)] = repo
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self, body: bytes) -> None:
        self._require_token()
        hub = self.server_hub
        payload = json.loads(body or b"{}")
        repo_id = f"{payload.get('organization') or hub.username}/{payload.get('name')}"
        repo_type = payload.get("type") or "model"
        with hub._lock:
            hub._repo(repo_type, repo_id)
            del hub._repos[(repo_type, repo_id)]
        self._json({})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str, query: dict[str, list[str]]) -> None:
        hub = self.server_hub
        blobs = (query.get("blobs") or ["false"])[-1].lower() in ("1", "true")
        with hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit = hub._resolve(repo, revision)
            info = hub._repo_info_json(repo, commit, blobs)
        self._json(info)

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str, recursive: bool, expand: bool) -> None:
        hub = self.server_hub
        path = path.strip("/")
        with hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit = hub._resolve(repo, revision)
            dirs = hub._dirs(commit.files)
            if path and path not in dirs:
                raise _HttpError(404, f"{path} does not exist on {revision}" if path not in commit.files
                                 else f"{path} is not a directory", "EntryNotFound",
                                 {"X-Repo-Commit": commit.sha})
            prefix = path + "/" if path else ""
            out = []
            for d in sorted(dirs):
                if d.startswith(prefix) and (recursive or "/" not in d[len(prefix):]):
                    out.append(hub._folder_json(repo, commit, d, expand))
            for p, entry in sorted(commit.files.items()):
                if p.startswith(prefix) and (recursive or "/" not in p[len(prefix):]):
                    out.append(hub._file_json(repo, p, entry, expand))
        self._json(out)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str, body: bytes) -> None:
        hub = self.server_hub
        content_type = (self.headers.get("Content-Type") or "").lower()
        if "json" in content_type:
            payload = json.loads(body or b"{}")
            paths = payload.get("paths") or []
            expand = bool(payload.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths = form.get("paths", []) + form.get("paths[]", [])
            expand = (form.get("expand") or ["false"])[-1].lower() in ("1", "true")
        with hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit = hub._resolve(repo, revision)
            dirs = hub._dirs(commit.files)
            out = []
            for p in paths:
                p = p.strip("/")
                if p in commit.files:
                    out.append(hub._file_json(repo, p, commit.files[p], expand))
                elif p in dirs:
                    out.append(hub._folder_json(repo, commit, p, expand))
        self._json(out)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        hub = self.server_hub
        with hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": sha}
                        for b, sha in sorted(repo.branches.items())]
        self._json({"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server_hub
        with hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            history = hub._history(repo, hub._resolve(repo, revision))
            out = [{"id": c.sha, "title": c.title, "message": c.message, "date": c.date,
                    "authors": [{"user": hub.username}]} for c in history]
        self._json(out)

    def _branch(self, method: str, repo_type: str, repo_id: str, branch: str, body: bytes) -> None:
        self._require_token()
        hub = self.server_hub
        with hub._lock:
            repo = hub._repo(repo_type, repo_id)
            if method == "DELETE":
                if branch not in repo.branches or branch == "main":
                    raise _HttpError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                del repo.branches[branch]
                return self._json({})
            if branch in repo.branches:
                raise _HttpError(409, f"Reference already exists: refs/heads/{branch}")
            payload = json.loads(body or b"{}")
            start = hub._resolve(repo, payload.get("startingPoint") or "main")
            repo.branches[branch] = start.sha
        self._json({})

    # -------------------------------------------------------------- uploads
    def _writable_branch(self, repo: _Repo, revision: str) -> _Commit:
        if revision not in repo.branches:
            raise _HttpError(404, f"Invalid rev id: {revision} (commits go to a branch)", "RevisionNotFound")
        return repo.commits[repo.branches[revision]]

    def _preupload(self, repo_type: str, repo_id: str, revision: str, query: dict[str, list[str]],
                   body: bytes) -> None:
        self._require_token()
        hub = self.server_hub
        payload = json.loads(body or b"{}")
        with hub._lock:
            repo = hub._repo(repo_type, repo_id)
            head = None if query.get("create_pr") else self._writable_branch(repo, revision)
            files = []
            for item in payload.get("files", []):
                path = item["path"]
                lfs = hub._is_lfs(path)
                existing = head.files.get(path) if head else None
                oid = None
                if existing is not None:
                    oid = existing.sha256 if lfs else _git_blob_sha1(hub._blob_path(existing.sha256).read_bytes())
                files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                              "oid": oid})
        self._json({"files": files, "commitOid": head.sha if head else None})

    def _lfs_batch(self, repo_type: str, repo_id: str, body: bytes) -> None:
        self._require_token()
        hub = self.server_hub
        payload = json.loads(body or b"{}")
        with hub._lock:
            hub._repo(repo_type, repo_id)
        if payload.get("operation") != "upload":
            raise _HttpError(400, "HubServer only implements the LFS 'upload' operation")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = _check_sha256(obj["oid"]), int(obj["size"])
            out: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not hub._blob_path(oid).exists():
                out["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{hub._upload_secret}/{oid}",
                                             "expires_in": 3600}}
            objects.append(out)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_upload(self, secret: str, oid: str, body: bytes) -> None:
        hub = self.server_hub
        if secret != hub._upload_secret:
            raise _HttpError(403, "bad upload url")
        if hashlib.sha256(body).hexdigest() != oid:
            raise _HttpError(400, f"uploaded content does not match sha256 {oid}")
        hub._store_blob(body)
        self._send(200, b"", content_type="text/plain")

    def _commit(self, repo_type: str, repo_id: str, revision: str, query: dict[str, list[str]],
                body: bytes) -> None:
        self._require_token()
        hub = self.server_hub
        if query.get("create_pr"):
            raise _HttpError(501, "HubServer does not implement pull requests (create_pr=True)")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line.get("key") == "header"), {})
        # Decode / check the content before taking the lock.
        staged: list[tuple[str, str, Any]] = []  # (op, path, payload)
        for line in lines:
            key, value = line.get("key"), line.get("value") or {}
            if key == "file":
                encoding = value.get("encoding", "base64")
                content = value.get("content", "")
                data = base64.b64decode(content) if encoding == "base64" else content.encode()
                staged.append(("add", value["path"], hub._entry_for(value["path"], data)))
            elif key == "lfsFile":
                oid = _check_sha256(value["oid"])
                if not hub._blob_path(oid).exists():
                    raise _HttpError(400, f"Your push was rejected because an LFS pointer pointed to a file that "
                                          f"does not exist ({value['path']}: sha256 {oid}).")
                size = hub._blob_path(oid).stat().st_size
                staged.append(("add", value["path"], _Entry(oid, size, _git_blob_sha1(_lfs_pointer(oid, size)),
                                                            True, "")))
            elif key in ("deletedFile", "deletedFolder"):
                staged.append((key, value["path"].strip("/"), None))
            elif key != "header":
                raise _HttpError(400, f"HubServer: unknown commit operation {key!r}")
        with hub._lock:
            repo = hub._repo(repo_type, repo_id)
            head = self._writable_branch(repo, revision)
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != head.sha:
                raise _HttpError(412, f"A commit has happened since. Please refresh and try again. "
                                      f"(parentCommit {parent_commit} is not the head {head.sha} of {revision})")
            files = dict(head.files)
            changed: dict[str, Any] = {}
            for op, path, entry in staged:
                if op == "add":
                    files[path] = entry
                    changed[path] = True
                elif op == "deletedFile":
                    if path not in files:
                        raise _HttpError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                else:
                    doomed = [p for p in files if p.startswith(path + "/")]
                    if not doomed:
                        raise _HttpError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in doomed:
                        del files[p]
            title = header.get("summary") or "Commit"
            commit = hub._make_commit(repo, revision, head, files, title, header.get("description") or "",
                                      changed)
        commit_url = f"{hub.url}/{_URL_PREFIX[repo_type]}{repo_id}/commit/{commit.sha}"
        self._json({"success": True, "commitOid": commit.sha, "commitUrl": commit_url, "hookOutput": "",
                    "pullRequestUrl": None})

    # -------------------------------------------------------------- downloads
    def _resolve_file(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        hub = self.server_hub
        with hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit = hub._resolve(repo, revision)
            entry = commit.files.get(path)
            if entry is None:
                raise _HttpError(404, f"Entry not found: {path} at {revision}", "EntryNotFound",
                                 {"X-Repo-Commit": commit.sha})
        etag = entry.sha256 if entry.lfs else entry.oid
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
        blob = hub._blob_path(entry.sha256)
        range_header = self.headers.get("Range")
        if range_header and range_header.startswith("bytes="):
            spec = range_header[len("bytes="):].split(",")[0].strip()
            first, _, last = spec.partition("-")
            if first == "":  # suffix range: last N bytes
                start, end = max(entry.size - int(last or 0), 0), entry.size - 1
            else:
                start = int(first)
                end = min(int(last), entry.size - 1) if last else entry.size - 1
            if start >= entry.size or start > end:
                headers["Content-Range"] = f"bytes */{entry.size}"
                return self._send(416, b"", headers)
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
            headers["Content-Length"] = str(end - start + 1)
            data = b""
            if self.command != "HEAD":
                with blob.open("rb") as f:
                    f.seek(start)
                    data = f.read(end - start + 1)
            return self._send(206, data, headers)
        headers["Content-Length"] = str(entry.size)
        self._send(200, b"" if self.command == "HEAD" else blob.read_bytes(), headers)


# ---------------------------------------------------------------------- client configuration
def client_env(url: str, hf_home: str | os.PathLike | None = None, token: str | None = FAKE_TOKEN) -> dict[str, str]:
    """Environment variables that point huggingface_hub / datasets (imported afterwards) at `url`.

    HF_HOME (if given) holds every cache (hub, datasets, xet, token file); HF_TOKEN is a fake token (unset when
    `token` is None: in the returned dict it is then an empty string, which the client treats as no token).
    """
    env = {
        "HF_ENDPOINT": url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_TOKEN": token or "",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    if hf_home is not None:
        env["HF_HOME"] = str(hf_home)
    return env


def _set_attrs(module: Any, values: dict[str, Any], saved: list[tuple[Any, str, Any]]) -> None:
    for name, value in values.items():
        if hasattr(module, name):
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, value)


@contextlib.contextmanager
def patch_clients(url: str, hf_home: str | os.PathLike | None = None,
                  token: str | None = FAKE_TOKEN) -> Iterator[None]:
    """Point this process's huggingface_hub and datasets at `url` (see the module docstring); restore on exit.

    `hf_home`: folder for every cache and the token file (strongly recommended in tests: otherwise the user's
    cache is used). `token`: exported as HF_TOKEN; None means anonymous (also hides any token file).
    """
    import huggingface_hub
    from huggingface_hub import constants, hf_api, hf_file_system
    from huggingface_hub.utils import _http

    url = url.rstrip("/")
    env = client_env(url, hf_home=hf_home, token=token)
    saved_env = {key: os.environ.get(key) for key in [*env, "HF_OIDC_RESOURCE", "HUGGING_FACE_HUB_TOKEN"]}
    saved: list[tuple[Any, str, Any]] = []
    try:
        os.environ.update(env)
        os.environ.pop("HF_OIDC_RESOURCE", None)
        os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)
        if token is None:
            os.environ.pop("HF_TOKEN", None)
        host = urlsplit(url).hostname or "127.0.0.1"
        hub_values: dict[str, Any] = {
            "ENDPOINT": url,
            "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {host}),
            "HF_HUB_DISABLE_XET": True,
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HUB_OFFLINE": False,
        }
        home = Path(hf_home) if hf_home is not None else None
        if home is not None:
            hub_values.update({
                "HF_HOME": str(home),
                "HF_HUB_CACHE": str(home / "hub"),
                "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
                "HF_ASSETS_CACHE": str(home / "assets"),
                "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
                "HF_XET_CACHE": str(home / "xet"),
                "HF_TOKEN_PATH": str(home / "token"),
                "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
                "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
                "CHECK_FOR_UPDATE_DONE_PATH": str(home / ".check_for_update_done"),
                "CHECK_FOR_SKILL_UPDATE_DONE_PATH": str(home / ".check_for_skill_update_done"),
            })
        elif token is None:
            hub_values["HF_TOKEN_PATH"] = os.path.join(tempfile.gettempdir(), f"hubserver-no-token-{os.getpid()}")
        _set_attrs(constants, hub_values, saved)
        _set_attrs(hf_api.api, {"endpoint": url}, saved)
        _set_attrs(hf_file_system.hffs, {"endpoint": url}, saved)
        _set_attrs(hf_file_system.hffs._api, {"endpoint": url}, saved)
        if hasattr(_http, "_url_origin"):  # huggingface_hub 2.x sends tokens only to the origins it knows
            origin = _http._url_origin(url)
            _set_attrs(_http, {"_HUB_ORIGINS": frozenset(_http._HUB_ORIGINS | {origin})}, saved)
        try:
            import datasets.config as ds_config
        except ImportError:  # datasets not installed: nothing to patch
            ds_config = None
        if ds_config is not None:
            ds_values: dict[str, Any] = {
                "HF_ENDPOINT": url,
                "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
                "USE_PARQUET_EXPORT": False,
                "HF_UPDATE_DOWNLOAD_COUNTS": False,
                "HF_HUB_OFFLINE": False,
                "HF_DATASETS_OFFLINE": False,
            }
            if home is not None:
                ds_values.update({
                    "HF_CACHE_HOME": str(home),
                    "HF_DATASETS_CACHE": home / "datasets",
                    "DOWNLOADED_DATASETS_PATH": home / "datasets" / "downloads",
                    "EXTRACTED_DATASETS_PATH": home / "datasets" / "downloads" / "extracted",
                    "HF_MODULES_CACHE": home / "modules",
                })
            _set_attrs(ds_config, ds_values, saved)
        huggingface_hub.HfFileSystem.clear_instance_cache()
        yield
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with contextlib.suppress(Exception):
            import huggingface_hub

            huggingface_hub.HfFileSystem.clear_instance_cache()
