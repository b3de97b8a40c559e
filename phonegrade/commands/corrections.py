"""`phonegrade corrections`: show, export, push or remove the corrections users flagged in the demo.

    phonegrade corrections show --source data/corrections
    phonegrade corrections export --task side --out runs/side-corrections   # image/label pairs, usable as --data
    phonegrade corrections push --repo user/phonegrade-corrections
    phonegrade corrections remove --id RECORD_ID --repo user/phonegrade-corrections   # a takedown
"""

from __future__ import annotations

import argparse
import json

from ..corrections import (
    CorrectionStore,
    HubPusher,
    bound_hub_requests,
    has_photo,
    latest_by_image,
    load_correction_rows,
    summarize,
)
from ..labels import TASK_LABELS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corrections", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="show, export, push or remove users' corrections",
        description="Users' corrections of wrong predictions, as the demo stores them (`phonegrade corrections "
                    "ACTION --help` for each action's options).")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, run, source_help: str = "corrections folder or Hub dataset id"):
        sub = actions.add_parser(name, formatter_class=argparse.ArgumentDefaultsHelpFormatter, help=help_text,
                                 description=help_text)
        sub.add_argument("--source", default="data/corrections", help=source_help)
        sub.set_defaults(run=run)
        return sub

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
    push.add_argument("--private", action="store_true", help="create the repo as private")
    remove = action("remove", "delete a record (a takedown): here at once, and from the Hub repo with --repo or at "
                              "the next push (the removal is logged, so one made while the Hub is unreachable is "
                              "carried out later)", run_remove, source_help="corrections folder")
    remove.add_argument("--id", required=True, dest="record_id", help="the record's id")
    remove.add_argument("--repo", help="Hub dataset repo id to delete it from now")


def run_push(args: argparse.Namespace) -> int:
    bound_hub_requests()  # a Hub that stops answering fails the push (the records stay queued), never hangs it
    pusher = HubPusher(CorrectionStore(args.source), args.repo, private=args.private)
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
