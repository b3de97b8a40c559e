"""`phonegrade corrections`: show, export or push the corrections users flagged in the demo.

    phonegrade corrections show --source data/corrections
    phonegrade corrections export --task side --out runs/side-corrections   # image/label pairs, usable as --data
    phonegrade corrections push --repo user/phonegrade-corrections
"""

from __future__ import annotations

import argparse
import json

from ..corrections import (
    CorrectionStore,
    HubPusher,
    bound_hub_requests,
    latest_by_image,
    load_correction_rows,
    summarize,
)
from ..errors import ConfigError
from ..labels import TASK_LABELS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corrections", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="show, export or push users' corrections",
        description="show: counts per task and corrected label, and disagreement with the model. "
                    "export: save to a `datasets` folder (with --task: image/label pairs usable as --data). "
                    "push: upload records not yet in the Hub dataset repo.")
    parser.add_argument("action", choices=("show", "export", "push"))
    parser.add_argument("--source", default="data/corrections",
                        help="corrections folder (or, for show/export, a Hub dataset id)")
    parser.add_argument("--out", help="export: output folder")
    parser.add_argument("--task", choices=sorted(TASK_LABELS), help="export: one task's image/label pairs")
    parser.add_argument("--repo", help="push: Hub dataset repo id")
    parser.add_argument("--private", action="store_true", help="push: create the repo as private")
    parser.add_argument("--json", action="store_true", help="show: print JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "push":
        if not args.repo:
            raise ConfigError("push needs --repo REPO_ID")
        bound_hub_requests()  # a Hub that stops answering fails the push (the records stay queued), never hangs it
        pusher = HubPusher(CorrectionStore(args.source), args.repo, private=args.private)
        pending = len(pusher.pending())
        pushed = pusher.push_all()
        print(f"pushed {pushed} of {pending} pending records to {args.repo}"
              + (f"; the rest stay queued ({pusher.last_error})" if pushed < pending else ""))
        return 0 if pushed == pending else 1
    if args.action == "export" and not args.out:
        raise ConfigError("export needs --out FOLDER")
    rows = load_correction_rows(args.source)
    if args.action == "show":
        summary = summarize(rows)
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        print(f"{summary['records']} correction records in {args.source}")
        for task in TASK_LABELS:
            s = summary[task]
            print(f"\n{task}: {s['corrections']} corrections, {s['disagreed_with_model']} disagreeing with the model")
            for label, n in sorted(s["by_label"].items()):
                print(f"  corrected to {label:<14} {n}")
            for confusion, n in sorted(s["confusions"].items(), key=lambda kv: -kv[1]):
                print(f"  model said {confusion:<32} {n}")
        return 0
    # export: a `datasets` folder, either all fields or (with --task) an image/label set ready for --data
    import datasets

    if args.task:
        latest = list(latest_by_image(rows, args.task).values())
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
