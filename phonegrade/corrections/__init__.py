"""Users' corrections of wrong predictions: stored safely (`store`), loaded with `datasets` and merged into training
(`reading`), pushed to a Hub dataset repo (`hub_push`).

Every record keeps the labels, the probabilities the models gave, the models' ids and the SHA-256 of the photo's
pixels. The photo itself is kept only when its sender agreed to contribute it under CC BY 4.0 (`consent`); without
that the record has no photo at all (not a placeholder), so nothing can train on it by mistake.

Layout of a corrections folder (the photo records are a `datasets` imagefolder, the dataset's `default` config;
the others are JSON lines, its `labels_only` config; `load_dataset(folder_or_repo, config)` reads either):

    README.md                                          dataset card (cards.write_dataset_card)
    records/<YYYY-MM-DD>/<record id>/image.png         the photo as uploaded: EXIF orientation applied, RGB,
                                                       re-encoded
    records/<YYYY-MM-DD>/<record id>/metadata.jsonl    one line: labels, probabilities, models, time, hash, licence
    labels_only/<YYYY-MM-DD>/<record id>/record.jsonl  the same line for a record without its photo

A record is written in a hidden staging folder and renamed into place in one step, so concurrent submissions
and a crash mid-write never leave a half-written record where readers look. Records are never changed once
written; a removal (`CorrectionStore.remove`) deletes one and logs it, so that the next push deletes it from the
Hub repo too.
"""

from .hub_push import FINAL_PUSH_BUDGET_S, HubPusher, bound_hub_requests
from .reading import has_photo, latest_by_image, load_correction_rows, merge_corrections, summarize
from .store import FIELDS, CorrectionStore, Prediction, clean_comment, content_hash, keyed_hash

__all__ = ["FIELDS", "FINAL_PUSH_BUDGET_S", "CorrectionStore", "HubPusher", "Prediction", "bound_hub_requests",
           "clean_comment", "content_hash", "has_photo", "keyed_hash", "latest_by_image", "load_correction_rows",
           "merge_corrections", "summarize"]
