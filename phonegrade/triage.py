"""Triage of users' corrections: which ones training may use without a person looking first.

Each correction is scored against the current model: its probabilities for the corrected photo, or, for a photo
that was in a `phonegrade crossval` run, the out-of-fold probabilities of the fold model that did not train on it
(a model is sure of the labels it trained on, so its own score of a training photo says little). A correction that
agrees with the model, or that fixes a prediction the model was unsure of (top probability below `confident`), is
**accepted**; one that contradicts a confident prediction goes to a **review queue**, where a person accepts or
rejects it (`review`).

Near-duplicate photos (a difference hash of a small greyscale copy within a few bits) form one group: a group with
a record that contradicts a confident prediction, or whose records name different labels, is queued as one item,
and training takes at most one record per group (the newest accepted). So fifty copies of a photo, re-encoded,
resized or slightly brightened, weigh no more than one, and cannot get past the model's confidence either.

Decisions are lines of `triage.jsonl` beside the records (in the folder, or in the Hub dataset repo): one per
record and task, later lines win, records themselves are never changed. A record without its photo cannot be
scored or trained on: it is counted, not decided.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .confidence import CONFIDENT
from .corrections import content_hash, has_photo
from .crossvalidation import read_crossval_run
from .duplicates import NEAR_DUPLICATE_BITS, difference_hash, near_duplicate_groups
from .errors import ConfigError, CorrectionError, ImageLoadError
from .hub import display_name
from .images import load_image

TRIAGE_LOG = "triage.jsonl"
DECISIONS = ("accepted", "queued", "rejected")


# ---------------------------------------------------------------- scores

def out_of_fold_probabilities(run: str | os.PathLike, task: str) -> dict[str, dict[str, float]]:
    """Pixel hash → out-of-fold probabilities (the mean over seeds) of the photos of a `phonegrade crossval` run.

    Photos are matched by the SHA-256 of their pixels, as correction records are: each photo of the run's
    predictions.csv is read again from the path it was listed under, so only photos of an imagefolder that is
    still there match (rows of a `datasets` source, `NAME#row`, do not)."""
    try:
        summary, rows = read_crossval_run(Path(run))
    except ValueError as err:
        raise ConfigError(f"--crossval {run}: {err}") from None
    if summary.get("task") != task:
        raise ConfigError(f"--crossval {run} is for the {summary.get('task')} task, not {task}")
    labels = summary["labels"]
    per_photo: dict[str, list[list[float]]] = defaultdict(list)
    for row in rows:
        per_photo[row["image"]].append([float(row[f"p_{label}"]) for label in labels])
    out = {}
    for key, probabilities in per_photo.items():
        if not Path(key).is_file():
            continue
        try:
            digest = content_hash(load_image(key))
        except ImageLoadError:
            continue
        out[digest] = dict(zip(labels, np.mean(probabilities, axis=0).round(4).tolist(), strict=True))
    return out


# ---------------------------------------------------------------- deciding

def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _decide(label: str, top: str, confidence: float, confident: float, contradicts: bool, group_contradicts: bool,
            group_labels: set[str]) -> tuple[str, str]:
    """One record's decision and its reason, given its group's."""
    if label == top:
        return "accepted", f"agrees with the model ({top} {confidence:.2f})"
    if contradicts:
        return "queued", f"contradicts a confident prediction ({top} {confidence:.2f} ≥ {confident})"
    if group_contradicts:
        return "queued", "near-duplicate of a photo whose correction contradicts a confident prediction"
    if len(group_labels) > 1:
        return "queued", f"near-duplicates corrected to different labels ({', '.join(sorted(group_labels))})"
    return "accepted", f"fixes an unsure prediction ({top} {confidence:.2f} < {confident})"


def _group_ids(rows: list[dict], groups: list[int], hashes: list[int], earlier: dict[str, dict]) -> dict[int, str]:
    """A stable id per near-duplicate group: the id an earlier triage gave one of its records (the oldest such
    record's), else `dh:` and the difference hash of its oldest record. So a group keeps its id when records are
    added, decided or removed, and the review queue's items stay the same items."""
    ids: dict[int, str] = {}
    for row, group in zip(rows, groups, strict=True):  # rows are sorted oldest first
        known = (earlier.get(row["record_id"]) or {}).get("group")
        if known and group not in ids:
            ids[group] = known
    return {group: ids.get(group, f"dh:{hashes[group]:016x}") for group in set(groups)}


def triage(rows: list[dict], task: str, classifier, out_of_fold: dict[str, dict[str, float]] | None = None,
           confident: float = CONFIDENT, max_bits: int = NEAR_DUPLICATE_BITS,
           decisions: dict[tuple[str, str], dict] | None = None) -> list[dict]:
    """Decision lines for the rows (with a photo) that correct `task`. `decisions`: those made before
    (`read_decisions`). A reviewer's decision on a record stands, and holds for its near-duplicates: a copy of a
    rejected photo is rejected, a copy of an accepted one with the same label accepted, with another label
    queued. Group ids are kept from earlier runs (`_group_ids`)."""
    earlier = {record_id: d for (record_id, t), d in (decisions or {}).items() if t == task}
    reviewed = {record_id: d for record_id, d in earlier.items() if d.get("by") == "review"}
    everything = sorted((r for r in rows if r.get(f"corrected_{task}") and has_photo(r)), key=lambda r: r["timestamp"])
    if not [r for r in everything if r["record_id"] not in reviewed]:
        return []
    hashes = [difference_hash(r["image"]) for r in everything]
    groups = near_duplicate_groups(hashes, max_bits)
    group_ids = _group_ids(everything, groups, hashes, earlier)
    members: dict[int, list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        members[group].append(i)
    todo = [i for i, r in enumerate(everything) if r["record_id"] not in reviewed]
    predicted = dict(zip(todo, classifier.predict([everything[i]["image"] for i in todo]), strict=True))
    scored = {}
    for i, probabilities in predicted.items():
        source = "model"
        if out_of_fold and everything[i]["content_hash"] in out_of_fold:
            probabilities, source = out_of_fold[everything[i]["content_hash"]], "out_of_fold"
        top = max(probabilities, key=probabilities.get)
        scored[i] = ({k: round(v, 4) for k, v in probabilities.items()}, source, top)
    model, revision, now = display_name(classifier.source or ""), classifier.model_revision(), _now()
    lines = []
    for group, indices in members.items():
        undecided = [i for i in indices if i in scored]
        by_reviewer = [reviewed[everything[i]["record_id"]] for i in indices if i not in scored]
        contradicted = [i for i in undecided if scored[i][2] != everything[i][f"corrected_{task}"]
                        and scored[i][0][scored[i][2]] >= confident]
        labels = {everything[i][f"corrected_{task}"] for i in undecided}
        for i in undecided:
            row, (probabilities, source, top) = everything[i], scored[i]
            label, confidence = row[f"corrected_{task}"], probabilities[top]
            if by_reviewer:  # the newest reviewer decision in the group holds for its copies
                decision, reason = _follow_reviewer(by_reviewer[-1], label)
            else:
                decision, reason = _decide(label, top, confidence, confident, i in contradicted, bool(contradicted),
                                           labels)
            lines.append({"record_id": row["record_id"], "task": task, "decision": decision, "reason": reason,
                          "group": group_ids[group], "group_size": len(indices), "corrected": label,
                          "predicted": top, "confidence": confidence, "probabilities": probabilities,
                          "probability_source": source, "model": model, "model_revision": revision,
                          "by": "triage", "time": now})
    return sorted(lines, key=lambda line: line["record_id"])


def _follow_reviewer(review: dict, label: str) -> tuple[str, str]:
    """The decision for a near-duplicate of a photo a reviewer decided on."""
    if review["decision"] == "rejected":
        return "rejected", f"near-duplicate of a photo a reviewer rejected ({review['record_id']})"
    if review["decision"] == "accepted" and review.get("corrected") == label:
        return "accepted", f"near-duplicate of a photo a reviewer accepted as {label} ({review['record_id']})"
    return "queued", (f"near-duplicate of a photo a reviewer {review['decision']} as {review.get('corrected')}, "
                      f"corrected to {label} here")


def review_lines(decisions: dict[tuple[str, str], dict], ids: Iterable[str], decision: str,
                 task: str | None = None) -> list[dict]:
    """A reviewer's decision for records (by record id, any decision) or queued groups (by group id, `dh:…`: every
    queued record of the group). A record's decision holds for the queued near-duplicates of its photo that name
    the same label (listed with it); later copies follow it at the next triage."""
    lines = []
    for wanted in ids:
        if wanted.startswith("dh:"):
            chosen = [d for d in decisions.values() if d.get("group") == wanted and d["decision"] == "queued"]
        else:
            chosen = [d for d in decisions.values() if d["record_id"] == wanted]
            chosen += [d for d in decisions.values() for c in list(chosen)
                       if d["decision"] == "queued" and d["record_id"] != c["record_id"] and d["task"] == c["task"]
                       and d.get("group") == c.get("group") and d.get("corrected") == c.get("corrected")]
        chosen = [d for d in chosen if task is None or d["task"] == task]
        if not chosen:
            raise ConfigError(f"{wanted}: no triaged record or queued group with this id"
                              f"{f' for the {task} task' if task else ''}; `review --list` shows the queue")
        lines += [{**d, "decision": decision, "reason": f"{decision} by a reviewer", "by": "review", "time": _now()}
                  for d in chosen]
    return lines


def queue(decisions: dict[tuple[str, str], dict]) -> dict[tuple[str, str], list[dict]]:
    """The review queue: (task, group id) → its queued records."""
    items: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for d in decisions.values():
        if d["decision"] == "queued":
            items[(d["task"], d["group"])].append(d)
    return dict(sorted(items.items()))


def select_corrections(rows: list[dict], decisions: dict[tuple[str, str], dict], task: str,
                       accepted_only: bool = True) -> tuple[list[dict], dict[str, int]]:
    """The rows training may use for `task`, and counts of the records correcting it by decision (`unreviewed`:
    never triaged; `without_photo`: nothing to train on).

    By default only accepted records, and of each near-duplicate group only the newest; with `accepted_only`
    False every record with a photo (the newest per photo still wins in `merge_corrections`)."""
    counts = Counter({key: 0 for key in (*DECISIONS, "unreviewed", "without_photo")})
    chosen: dict[str, dict] = {}
    for row in sorted((r for r in rows if r.get(f"corrected_{task}")), key=lambda r: r["timestamp"]):
        if not has_photo(row):
            counts["without_photo"] += 1
            continue
        decision = decisions.get((row["record_id"], task))
        state = decision["decision"] if decision else "unreviewed"
        counts[state] += 1
        if not accepted_only:
            chosen[row["record_id"]] = row
        elif state == "accepted":
            chosen[decision.get("group") or row["content_hash"]] = row  # sorted by time: the newest stays
    return list(chosen.values()), dict(counts)


# ---------------------------------------------------------------- triage.jsonl

def _parse(text: str) -> dict[tuple[str, str], dict]:
    decisions = {}
    for line in text.splitlines():
        try:
            decision = json.loads(line)
        except ValueError:  # a line cut by a crash: the decision is made again by the next triage
            continue
        decisions[(decision["record_id"], decision["task"])] = decision
    return decisions


def _hub_text(repo_id: str, revision: str | None, token: str | None) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, TRIAGE_LOG, repo_type="dataset", revision=revision,
                                    token=token)).read_text(encoding="utf-8")
    except EntryNotFoundError:
        return ""


def read_decisions(source: str | os.PathLike, revision: str | None = None,
                   token: str | None = None) -> dict[tuple[str, str], dict]:
    """(record id, task) → the latest decision, from the triage.jsonl of a corrections folder or Hub dataset repo
    (at `revision`); empty when nothing was triaged."""
    path = Path(source)
    if path.is_dir():
        log = path / TRIAGE_LOG
        return _parse(log.read_text(encoding="utf-8") if log.exists() else "")
    try:
        return _parse(_hub_text(str(source), revision, token))
    except Exception as err:  # noqa: BLE001 - network and Hub errors: the message is what matters
        raise CorrectionError(f"could not read the triage decisions of {source}: {err}") from err


def append_decisions(source: str | os.PathLike, lines: list[dict], token: str | None = None) -> None:
    """Add decision lines to the triage.jsonl of a corrections folder (appended and synced) or Hub dataset repo
    (one commit of the file as it is on the main branch now, plus the lines)."""
    if not lines:
        return
    text = "".join(json.dumps(line) + "\n" for line in lines)
    path = Path(source)
    if path.is_dir():
        with open(path / TRIAGE_LOG, "a", encoding="utf-8") as log:
            log.write(text)
            log.flush()
            os.fsync(log.fileno())
        return
    from huggingface_hub import CommitOperationAdd, HfApi

    try:
        current = _hub_text(str(source), None, token)
        content = (current if not current or current.endswith("\n") else current + "\n") + text
        HfApi(token=token).create_commit(str(source), [CommitOperationAdd(TRIAGE_LOG, io.BytesIO(content.encode()))],
                                         repo_type="dataset", commit_message=f"Triage: {len(lines)} decisions")
    except Exception as err:  # noqa: BLE001 - network and Hub errors: the message is what matters
        raise CorrectionError(f"could not write the triage decisions to {source}: {err}") from err
