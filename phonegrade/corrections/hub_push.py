"""Pushing a corrections folder to a Hub dataset repo, in the background."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from ..cards import write_dataset_card
from .reading import has_photo, summarize
from .store import FIELDS, LICENCE, CorrectionStore, dataset_configs

PUSHED_LOG = ".pushed"  # record ids already in the Hub repo, one per line
REMOVED_LOG = ".removed"  # ids of removed records that the Hub repo no longer holds, one per line
# The Hub asks for fewer than 100 files per commit; a record is two files (image, metadata) and each commit
# also updates the card.
MAX_FILES_PER_COMMIT = 99
MAX_RECORDS_PER_COMMIT = (MAX_FILES_PER_COMMIT - 1) // 2
HUB_TIMEOUT_S = 30.0  # bound_hub_requests without PHONEGRADE_HUB_TIMEOUT
FINAL_PUSH_BUDGET_S = 10.0  # default of HubPusher.stop


def bound_hub_requests() -> None:
    """Make every huggingface_hub request of this process fail after PHONEGRADE_HUB_TIMEOUT seconds (default
    HUB_TIMEOUT_S) spent connecting or waiting to read or write.

    huggingface_hub's shared HTTP client has no time limit, and the calls a push makes (create_repo,
    create_commit) set none, so a Hub that accepts the connection and never answers would hold the push, and the
    pusher's lock, forever. Calls that set their own limit (downloads) keep it.
    """
    from huggingface_hub import set_client_factory

    try:  # a private module: should a release move it, pushes keep huggingface_hub's own (unbounded) client
        from huggingface_hub.utils._http import default_client_factory
    except ImportError:
        logging.getLogger("phonegrade").warning("this huggingface_hub has no utils._http.default_client_factory: "
                                                "Hub requests are not bounded")
        return
    limit = float(os.environ.get("PHONEGRADE_HUB_TIMEOUT", HUB_TIMEOUT_S))

    def client_factory():
        client = default_client_factory()
        client.timeout = limit
        return client

    set_client_factory(client_factory)


def _read_ids(path: Path) -> set[str]:
    return set(path.read_text().split()) if path.exists() else set()


def _log_ids(path: Path, ids: Iterable[str]) -> None:
    """Append ids to a log once a commit has them; unlogged, the next push repeats that work (no harm)."""
    try:
        with open(path, "a") as log:
            log.write("".join(f"{record_id}\n" for record_id in ids))
            log.flush()
            os.fsync(log.fileno())
    except OSError as err:
        logging.getLogger("phonegrade").warning("could not log pushed corrections: %s", err)


class HubPusher:
    """Uploads new records to a Hub dataset repo in batches, from a background thread, and deletes removed ones.

    What has gone up, and which removals the repo has had, is logged locally after each successful commit, so
    records written or removed while the Hub is unreachable (or while the app was down) stay queued and go with a
    later commit, across restarts.
    """

    def __init__(self, store: CorrectionStore, repo_id: str, every_s: float = 300, token: str | None = None,
                 private: bool = True, batch_size: int = MAX_RECORDS_PER_COMMIT):
        self.store, self.repo_id, self.every_s = store, repo_id, every_s
        self.token, self.private = token, private
        self.batch_size = max(1, min(batch_size, MAX_RECORDS_PER_COMMIT))
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._repo_ready = False

    def pushed_ids(self) -> set[str]:
        return _read_ids(self.store.root / PUSHED_LOG)

    def pending(self) -> list[Path]:
        """Record folders not yet in the repo (a record being removed is not pushed, even if its folder is left)."""
        done = self.pushed_ids() | set(self.store.removals())
        return [p.parent for p in self.store.metadata_files() if p.parent.name not in done]

    def pending_removals(self) -> dict[str, str]:
        """Record id → folder of removed records that the repo may still hold."""
        done = _read_ids(self.store.root / REMOVED_LOG)
        return {record_id: folder for record_id, folder in self.store.removals().items() if record_id not in done}

    def _api(self):
        from huggingface_hub import HfApi

        api = HfApi(token=self.token)
        if not self._repo_ready:
            api.create_repo(self.repo_id, repo_type="dataset", private=self.private, exist_ok=True)
            self._repo_ready = True
        return api

    def _card(self, adding: list[Path]):
        """The card of the repo as this commit leaves it: the records pushed before or now (removed ones are gone
        from the folder)."""
        from huggingface_hub import CommitOperationAdd

        in_repo = self.pushed_ids() | {folder.name for folder in adding}
        records = [r for r in self.store.records() if r["record_id"] in in_repo]
        card = write_dataset_card(self.store.root, FIELDS, LICENCE, self.repo_id, summarize(records),
                                  dataset_configs(any(has_photo(r) for r in records)))
        return CommitOperationAdd("README.md", str(card))

    def _delete_removed(self) -> int:
        """One commit deleting the folders of removed records that the repo holds; returns how many."""
        from huggingface_hub import CommitOperationDelete

        removals = self.pending_removals()
        if not removals:
            return 0
        api = self._api()
        folders = list(removals.values())
        # Asked, not taken from the push log: a record pushed by a run that died before logging it is there too.
        present = {info.path for info in api.get_paths_info(self.repo_id, folders, repo_type="dataset")}
        deletions = [CommitOperationDelete(f"{folder}/", is_folder=True) for folder in folders if folder in present]
        if deletions:
            api.create_commit(self.repo_id, [self._card([]), *deletions], repo_type="dataset",
                              commit_message=f"Remove {len(deletions)} corrections")
        _log_ids(self.store.root / REMOVED_LOG, removals)
        return len(deletions)

    def _push_records(self, batch: list[Path]) -> None:
        from huggingface_hub import CommitOperationAdd

        operations = [self._card(batch)]
        for folder in batch:
            for path in sorted(folder.iterdir()):
                operations.append(CommitOperationAdd(path.relative_to(self.store.root).as_posix(), str(path)))
        self._api().create_commit(self.repo_id, operations, repo_type="dataset",
                                  commit_message=f"Add {len(batch)} corrections")
        _log_ids(self.store.root / PUSHED_LOG, [folder.name for folder in batch])

    def _failed(self, err: Exception, what: str) -> None:
        self.last_error = f"{err.__class__.__name__}: {err}"
        logging.getLogger("phonegrade").warning("corrections push to %s failed, %s: %s", self.repo_id, what,
                                                self.last_error)

    def push_removals(self) -> bool:
        """Delete removed records from the repo now; False (they stay queued) when that failed."""
        with self._lock:
            try:
                self._delete_removed()
            except Exception as err:  # noqa: BLE001 - network, auth and server errors all mean "try later"
                self._failed(err, f"{len(self.pending_removals())} removals stay queued")
                return False
            self.last_error = None
            return True

    def push_once(self) -> int:
        """Carry out queued removals, then push up to one batch of pending records; returns how many records went
        up (0 on failure: what was queued stays queued)."""
        with self._lock:
            batch = self.pending()[: self.batch_size]
            if not batch and not self.pending_removals():
                return 0
            try:
                self._delete_removed()
                if batch:
                    self._push_records(batch)
            except Exception as err:  # noqa: BLE001 - network, auth and server errors all mean "try later"
                self._failed(err, f"{len(batch)} records and {len(self.pending_removals())} removals stay queued")
                return 0
            self.last_error = None
            return len(batch)

    def push_all(self) -> int:
        total = 0
        while (pushed := self.push_once()) > 0:
            total += pushed
        return total

    def start(self) -> HubPusher:
        def loop():
            while not self._stop.wait(self.every_s):
                try:
                    self.push_all()
                except Exception:  # noqa: BLE001 - the thread must outlive any one failure (e.g. a full disk)
                    logging.getLogger("phonegrade").exception("corrections push failed; retrying later")

        self._thread = threading.Thread(target=loop, name="corrections-push", daemon=True)
        self._thread.start()
        return self

    def stop(self, final_push: bool = True, budget_s: float = FINAL_PUSH_BUDGET_S) -> None:
        """Stop the background pushes; with `final_push`, push what is queued, waiting at most `budget_s` seconds.

        The last push runs in a daemon thread, so that neither a Hub that never answers nor a background push
        holding the lock across such a call can keep the process from exiting; records it does not get up stay
        queued for the next start.
        """
        self._stop.set()
        if not final_push:
            return
        last = threading.Thread(target=self.push_all, name="corrections-final-push", daemon=True)
        last.start()
        last.join(budget_s)
        if last.is_alive():
            logging.getLogger("phonegrade").warning("the last corrections push to %s did not finish in %gs; what it "
                                                    "has not sent stays queued", self.repo_id, budget_s)
