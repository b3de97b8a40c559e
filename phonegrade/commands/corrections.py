"""`phonegrade corrections`: triage, review, show, export, push or remove the corrections users flagged in the demo.

    phonegrade corrections triage --source data/corrections --model runs/side [--crossval runs/cv-side]
    phonegrade corrections review --source data/corrections --list      # then --accept ID ... / --reject ID ...
    phonegrade corrections show --source data/corrections
    phonegrade corrections export --task side --out runs/side-corrections   # image/label pairs, usable as --data
    phonegrade corrections push --repo user/phonegrade-corrections
    phonegrade corrections remove --id RECORD_ID --repo user/phonegrade-corrections   # a takedown
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from ..classifier import PhoneGradeClassifier
from ..confidence import CONFIDENT
from ..corrections import (
    CorrectionStore,
    HubPusher,
    bound_hub_requests,
    has_photo,
    latest_by_image,
    load_correction_rows,
    summarize,
)
from ..duplicates import NEAR_DUPLICATE_BITS
from ..errors import ConfigError
from ..hub import resolve_dataset_revision
from ..labels import TASK_LABELS
from ..triage import (
    append_decisions,
    out_of_fold_probabilities,
    queue,
    read_decisions,
    review_lines,
    select_corrections,
    triage,
)
from . import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corrections", formatter_class=HelpFormatter,
        help="triage, review, show, export, push or remove users' corrections",
        description="Users' corrections of wrong predictions, as the demo stores them (`phonegrade corrections "
                    "ACTION --help` for each action's options).")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, run, source_help: str = "corrections folder or Hub dataset id"):
        sub = actions.add_parser(name, formatter_class=HelpFormatter, help=help_text,
                                 description=help_text)
        sub.add_argument("--source", default="data/corrections", help=source_help)
        sub.set_defaults(run=run)
        return sub

    triage_ = action("triage", "score each correction against the current model: those that agree with it or fix "
                               "a prediction it was unsure of are accepted, those that contradict a confident "
                               "prediction (and their near-duplicate photos) go to the review queue; decisions are "
                               "added to triage.jsonl beside the records, which training reads", run_triage)
    triage_.add_argument("--model", required=True, help="the current model (folder or Hub id): its task is triaged")
    triage_.add_argument("--revision", help="Hub revision of --model")
    triage_.add_argument("--task", choices=sorted(TASK_LABELS), help="check that --model is for this task")
    triage_.add_argument("--crossval", metavar="RUN",
                         help="a `phonegrade crossval` output folder of the model's recipe: photos of that run "
                              "(matched by pixel hash) are scored by the fold model that did not train on them")
    triage_.add_argument("--confident", type=float, default=CONFIDENT,
                         help="a top probability at least this high is a prediction the model is sure of")
    triage_.add_argument("--near-duplicate-bits", type=int, default=NEAR_DUPLICATE_BITS,
                         help="photos whose 64-bit difference hashes differ in at most this many bits are one photo")
    review = action("review", "list the review queue (the default), or accept or reject queued corrections by record "
                              "id or group id (dh:…, every queued record of the group)", run_review)
    review.add_argument("--accept", nargs="+", default=[], metavar="ID")
    review.add_argument("--reject", nargs="+", default=[], metavar="ID")
    review.add_argument("--task", choices=sorted(TASK_LABELS), help="only this task's decisions")
    review.add_argument("--list", action="store_true", help="list the queue (after any --accept / --reject)")
    show = action("show", "counts per task and corrected label, disagreement with the model, records without a "
                          "photo, flagged vs asked", run_show)
    show.add_argument("--json", action="store_true", help="print JSON")
    export = action("export", "save to a `datasets` folder (with --task: image/label pairs usable as --data; "
                              "records without a photo are left out)", run_export)
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--task", choices=sorted(TASK_LABELS), help="one task's image/label pairs")
    push = action("push", "upload records not yet in the Hub dataset repo, and delete removed ones from it",
                  run_push, source_help="corrections folder")
    push.add_argument("--repo", required=True, help="Hub dataset repo id")
    push.add_argument("--public", action="store_true",
                      help="create the repo as public (default: private; an existing repo keeps its visibility)")
    remove = action("remove", "delete a record (a takedown): here at once, and from the Hub repo with --repo or at "
                              "the next push (the removal is logged, so one made while the Hub is unreachable is "
                              "carried out later)", run_remove, source_help="corrections folder")
    remove.add_argument("--id", required=True, dest="record_id", help="the record's id")
    remove.add_argument("--repo", help="Hub dataset repo id to delete it from now")


def run_triage(args: argparse.Namespace) -> int:
    classifier = PhoneGradeClassifier.from_pretrained(args.model, revision=args.revision)
    task = classifier.task
    if args.task and args.task != task:
        raise ConfigError(f"--model {args.model} is a {task} model, not a {args.task} one")
    revision = _hub_revision(args.source)
    rows = load_correction_rows(args.source, revision=revision)
    decisions = read_decisions(args.source, revision=revision)
    reviewed = {record_id for (record_id, t), d in decisions.items() if t == task and d["by"] == "review"}
    out_of_fold = out_of_fold_probabilities(args.crossval, task) if args.crossval else None
    lines = triage(rows, task, classifier, out_of_fold, args.confident, args.near_duplicate_bits, decisions)
    append_decisions(args.source, lines)
    decided = Counter(line["decision"] for line in lines)
    groups = {line["group"] for line in lines if line["decision"] == "queued"}
    _, counts = select_corrections(rows, read_decisions(args.source), task)
    print(f"{task} corrections in {args.source} against {args.model}: {decided['accepted']} accepted, "
          f"{decided['queued']} queued for review as {len(groups)} items"
          + (f" ({sum(line['probability_source'] == 'out_of_fold' for line in lines)} scored out of fold)"
             if out_of_fold is not None else "")
          + (f"; {len(reviewed)} decided by a reviewer before, kept" if reviewed else "")
          + (f"; {counts['without_photo']} without a photo, not triaged" if counts["without_photo"] else ""))
    if groups:
        print(f"review them: phonegrade corrections review --source {args.source} --list")
    return 0


def run_review(args: argparse.Namespace) -> int:
    revision = _hub_revision(args.source)
    decisions = read_decisions(args.source, revision=revision)
    lines = review_lines(decisions, args.accept, "accepted", args.task) + \
        review_lines(decisions, args.reject, "rejected", args.task)
    append_decisions(args.source, lines)
    for line in lines:
        print(f"{line['decision']}: {line['record_id']} ({line['task']} → {line['corrected']})")
    if lines and not args.list:
        return 0
    items = queue(read_decisions(args.source) if lines else decisions)
    items = {key: records for key, records in items.items() if args.task in (None, key[0])}
    images = {r["record_id"]: r["image_path"] for r in CorrectionStore(args.source).records()} \
        if not revision else {}
    print(f"{sum(map(len, items.values()))} queued corrections in {len(items)} items")
    for (task, group), records in items.items():
        first = records[0]
        labels = ", ".join(sorted({r["corrected"] for r in records}))
        print(f"\n{group}  {task}: {len(records)} record(s) corrected to {labels}; the model said {first['predicted']} "
              f"{first['confidence']:.2f} ({first['probability_source']})")
        for r in records:
            print(f"  {r['record_id']}  {r['reason']}" + (f"  {images[r['record_id']]}" if images.get(r["record_id"])
                                                          else ""))
    return 0


def _hub_revision(source: str) -> str | None:
    """The commit a Hub repo's main branch points at now (None for a folder): rows and decisions are read there."""
    return None if Path(source).is_dir() else resolve_dataset_revision(source)


def run_push(args: argparse.Namespace) -> int:
    bound_hub_requests()  # a Hub that stops answering fails the push (the records stay queued), never hangs it
    pusher = HubPusher(CorrectionStore(args.source), args.repo, private=not args.public)
    pending, removals = len(pusher.pending()), len(pusher.pending_removals())
    pushed = pusher.push_all()
    left = len(pusher.pending_removals())
    print(f"pushed {pushed} of {pending} pending records to {args.repo}"
          + (f", deleted {removals - left} removed ones" if removals else "")
          + (f"; the rest stay queued ({pusher.last_error})" if pushed < pending or left else ""))
    return 0 if pushed == pending and not left else 1


def run_remove(args: argparse.Namespace) -> int:
    store = CorrectionStore(args.source)
    folder = store.remove(args.record_id)
    print(f"removed {folder} from {args.source}")
    if not args.repo:
        print("the next push (the demo's, or `phonegrade corrections push`) deletes it from the Hub repo")
        return 0
    bound_hub_requests()
    pusher = HubPusher(store, args.repo)
    if pusher.push_removals():
        print(f"deleted it from {args.repo} (earlier commits of the repo still hold it)")
        return 0
    print(f"could not reach {args.repo}; the deletion stays queued for the next push ({pusher.last_error})")
    return 1


def run_show(args: argparse.Namespace) -> int:
    summary = summarize(load_correction_rows(args.source))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['records']} correction records in {args.source}, {summary['without_photo']} without a photo "
          f"(counted here, never trained on); {summary['by_source']['flagged']} flagged by users, "
          f"{summary['by_source']['asked']} answers to the demo asking")
    for task in TASK_LABELS:
        s = summary[task]
        print(f"\n{task}: {s['corrections']} corrections, {s['disagreed_with_model']} disagreeing with the model")
        for label, n in sorted(s["by_label"].items()):
            print(f"  corrected to {label:<14} {n}")
        for confusion, n in sorted(s["confusions"].items(), key=lambda kv: -kv[1]):
            print(f"  model said {confusion:<32} {n}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """A `datasets` folder: all fields, or (with --task) an image/label set ready for --data."""
    import datasets

    rows = load_correction_rows(args.source)
    if args.task:
        latest = list(latest_by_image([r for r in rows if has_photo(r)], args.task).values())
        names = list(TASK_LABELS[args.task])
        features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
        dataset = datasets.Dataset.from_dict(
            {"image": [r["image"] for r in latest],
             "label": [names.index(r[f"corrected_{args.task}"]) for r in latest]},
            features=features)
    else:
        dataset = datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({})
    dataset.save_to_disk(args.out)
    print(f"exported {len(dataset)} rows to {args.out}")
    return 0
