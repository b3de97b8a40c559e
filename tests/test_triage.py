"""Triage of corrections: scored against the model, near-duplicates grouped, reviewed; only accepted ones train."""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from phonegrade import PhoneGradeClassifier
from phonegrade.cli import main as cli_main
from phonegrade.corrections import CorrectionStore, Prediction, content_hash, load_correction_rows
from phonegrade.duplicates import NEAR_DUPLICATE_BITS, difference_hash, near_duplicate_groups, varied_copy
from phonegrade.images import load_image
from phonegrade.synth import write_synthetic_dataset
from phonegrade.triage import (
    append_decisions,
    out_of_fold_probabilities,
    read_decisions,
    review_lines,
    select_corrections,
    triage,
)

SHOWN = Prediction({"front": 0.4, "back": 0.3, "none": 0.3}, {})  # what the demo showed: not used by triage


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> list[Path]:
    """Photos no model here has trained on: 10 per class at 48 px."""
    out = tmp_path_factory.mktemp("pool")
    write_synthetic_dataset("side", out, per_class=10, size=48, seed=99, progress=False)
    return sorted(out.glob("*/*/*.png"))


def test_copies_of_a_photo_hash_alike_and_different_photos_do_not(pool):
    photos = [load_image(p) for p in pool]
    hashes = [difference_hash(p) for p in photos]
    copies = [difference_hash(varied_copy(p, seed)) for p in photos for seed in range(3)]
    distances = [(hashes[i // 3] ^ c).bit_count() for i, c in enumerate(copies)]
    apart = [(a ^ b).bit_count() for i, a in enumerate(hashes) for b in hashes[i + 1:]]
    assert np.mean(distances) < 4 and np.percentile(distances, 90) <= NEAR_DUPLICATE_BITS
    assert min(apart) > NEAR_DUPLICATE_BITS and np.median(apart) >= 24
    groups = near_duplicate_groups(hashes + copies)
    assert len(set(groups[: len(hashes)])) == len(hashes)  # no two of the pool's photos are one
    assert sum(groups[len(hashes) + i] == groups[i // 3] for i in range(len(copies))) >= 0.9 * len(copies)


@dataclass
class FixedModel:
    """Stands in for a classifier: the probabilities it gives each photo, by pixel hash."""

    probabilities: dict[str, dict[str, float]]
    source: str = "user/side"
    revision: str = "abc123"

    def predict(self, images):
        return [self.probabilities[content_hash(image)] for image in images]

    def model_revision(self):
        return self.revision


def _sure(label: str, p: float = 0.95) -> dict[str, float]:
    rest = (1 - p) / 2
    return {name: p if name == label else rest for name in ("front", "back", "none")}


def test_corrections_that_agree_or_fix_unsure_predictions_are_accepted_and_confident_contradictions_queued(
        pool, tmp_path):
    store = CorrectionStore(tmp_path).ensure()
    photos = {name: load_image(pool[i]) for name, i in (("agree", 0), ("unsure", 11), ("sure", 21), ("split", 25))}
    copy_of_sure, copy_of_split = varied_copy(photos["sure"], 1), varied_copy(photos["split"], 2)
    model = FixedModel({content_hash(photos["agree"]): _sure("front"),
                        content_hash(photos["unsure"]): _sure("front", 0.5),
                        content_hash(photos["sure"]): _sure("none"), content_hash(copy_of_sure): _sure("none", 0.6),
                        content_hash(photos["split"]): _sure("front", 0.5),
                        content_hash(copy_of_split): _sure("front", 0.5)})
    ids = {"agree": store.add(photos["agree"], SHOWN, "front", consent=True),
           "unsure": store.add(photos["unsure"], SHOWN, "back", consent=True),
           "sure": store.add(photos["sure"], SHOWN, "back", consent=True),
           "copy_of_sure": store.add(copy_of_sure, SHOWN, "back", consent=True),  # unsure alone, but a copy
           "split": store.add(photos["split"], SHOWN, "back", consent=True),
           "copy_of_split": store.add(copy_of_split, SHOWN, "none", consent=True),  # the same photo, another label
           "no_photo": store.add(photos["sure"], SHOWN, "back")}
    lines = {line["record_id"]: line for line in triage(load_correction_rows(tmp_path), "side", model)}
    decided = {name: lines[record_id]["decision"] for name, record_id in ids.items() if record_id in lines}
    assert decided == {"agree": "accepted", "unsure": "accepted", "sure": "queued", "copy_of_sure": "queued",
                       "split": "queued", "copy_of_split": "queued"}  # the record without a photo: no decision
    assert lines[ids["sure"]]["group"] == lines[ids["copy_of_sure"]]["group"] != lines[ids["split"]]["group"]
    assert "contradicts a confident prediction (none 0.95" in lines[ids["sure"]]["reason"]
    assert lines[ids["unsure"]]["reason"] == "fixes an unsure prediction (front 0.50 < 0.8)"
    assert lines[ids["sure"]]["model"] == "user/side" and lines[ids["sure"]]["model_revision"] == "abc123"
    assert lines[ids["sure"]]["probabilities"] == pytest.approx(_sure("none"))


def test_out_of_fold_probabilities_score_the_photos_of_a_crossval_run(pool, tmp_path):
    run = tmp_path / "cv"
    run.mkdir()
    (run / "crossval.json").write_text(json.dumps({"task": "side", "labels": ["front", "back", "none"]}))
    with open(run / "predictions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["seed", "fold", "image", "label", "predicted", "p_front", "p_back", "p_none"])
        writer.writeheader()
        for seed, p_front in ((0, 0.5), (1, 0.3)):  # two seeds: the mean counts
            writer.writerow({"seed": seed, "fold": 1, "image": str(pool[0]), "label": "front", "predicted": "front",
                             "p_front": p_front, "p_back": 0.6 - p_front, "p_none": 0.4})
        writer.writerow({"seed": 0, "fold": 2, "image": "photos:train#3", "label": "back", "predicted": "back",
                         "p_front": 0.1, "p_back": 0.8, "p_none": 0.1})  # not a file: cannot be matched
    photo = load_image(pool[0])
    out_of_fold = out_of_fold_probabilities(run, "side")
    assert out_of_fold == {content_hash(photo): {"front": 0.4, "back": 0.2, "none": 0.4}}
    store = CorrectionStore(tmp_path / "c").ensure()
    record_id = store.add(photo, SHOWN, "none", consent=True)
    model = FixedModel({content_hash(photo): _sure("front", 0.99)})  # sure of a photo it trained on
    assert triage(load_correction_rows(store.root), "side", model)[0]["decision"] == "queued"
    (line,) = triage(load_correction_rows(store.root), "side", model, out_of_fold)
    assert (line["record_id"], line["decision"], line["probability_source"]) == (record_id, "accepted", "out_of_fold")
    with pytest.raises(ValueError, match="is for the side task, not scratch"):
        out_of_fold_probabilities(run, "scratch")


def test_only_accepted_corrections_train_one_per_near_duplicate_group_unless_all_are_asked_for():
    rows = [{"record_id": f"r{i}", "timestamp": f"t{i}", "content_hash": f"h{i}", "corrected_side": "back",
             "photo_stored": True} for i in range(6)]
    rows[5]["photo_stored"] = False
    decision = {"r0": ("accepted", "dh:1"), "r1": ("accepted", "dh:1"), "r2": ("queued", "dh:2"),
                "r3": ("rejected", "dh:3")}
    decisions = {(record_id, "side"): {"decision": d, "group": group} for record_id, (d, group) in decision.items()}
    chosen, counts = select_corrections(rows, decisions, "side")
    assert [r["record_id"] for r in chosen] == ["r1"]  # the newer of the two copies
    assert counts == {"accepted": 2, "queued": 1, "rejected": 1, "unreviewed": 1, "without_photo": 1}
    everything, _ = select_corrections(rows, decisions, "side", accepted_only=False)
    assert [r["record_id"] for r in everything] == ["r0", "r1", "r2", "r3", "r4"]


def test_review_accepts_and_rejects_queued_corrections_and_triage_keeps_a_reviewers_decision(
        trained_side_model, pool, tmp_path, capsys):
    store = CorrectionStore(tmp_path).ensure()
    model = PhoneGradeClassifier.from_pretrained(trained_side_model)
    photos = [load_image(p) for p in pool[:3]]
    # Sure of the wrong label: the test model gives every photo about 1/3, so --confident 0.3 makes it "sure".
    tops = [max(p, key=p.get) for p in model.predict(photos)]
    wrong = [next(label for label in model.labels if label != top) for top in tops]
    ids = [store.add(photo, SHOWN, label, consent=True) for photo, label in zip(photos, wrong, strict=True)]
    copy_id = store.add(varied_copy(photos[2], 7), SHOWN, wrong[2], consent=True)
    assert cli_main(["corrections", "triage", "--source", str(tmp_path), "--model", str(trained_side_model),
                     "--confident", "0.3"]) == 0
    assert "0 accepted, 4 queued for review as 3 items" in capsys.readouterr().out
    decisions = read_decisions(tmp_path)
    assert {decisions[(i, "side")]["decision"] for i in [*ids, copy_id]} == {"queued"}
    group = decisions[(ids[2], "side")]["group"]
    assert decisions[(copy_id, "side")]["group"] == group

    assert cli_main(["corrections", "review", "--source", str(tmp_path), "--accept", ids[0], group,
                     "--reject", ids[1]]) == 0
    decisions = read_decisions(tmp_path)
    assert [decisions[(i, "side")]["decision"] for i in [*ids, copy_id]] == ["accepted", "rejected", "accepted",
                                                                             "accepted"]
    capsys.readouterr()
    assert cli_main(["corrections", "review", "--source", str(tmp_path), "--list"]) == 0
    assert "0 queued corrections in 0 items" in capsys.readouterr().out
    lines_before = (tmp_path / "triage.jsonl").read_text().splitlines()
    assert cli_main(["corrections", "triage", "--source", str(tmp_path), "--model", str(trained_side_model),
                     "--confident", "0.3"]) == 0  # again, e.g. with a newer model
    assert "4 decided by a reviewer before, kept" in capsys.readouterr().out
    assert (tmp_path / "triage.jsonl").read_text().splitlines() == lines_before  # nothing left to decide
    assert cli_main(["corrections", "review", "--source", str(tmp_path), "--accept", "nonsense"]) == 2
    assert "no triaged record or queued group" in capsys.readouterr().err
    for record in store.records():  # decisions live beside the records, which stay as they were written
        assert "decision" not in json.loads(Path(record["image_path"]).with_name("metadata.jsonl").read_text())


def test_a_reviewers_rejection_holds_for_every_copy_of_the_photo_and_its_group_keeps_its_id(pool, tmp_path):
    store = CorrectionStore(tmp_path).ensure()
    photo = load_image(pool[21])
    copies = [varied_copy(photo, seed) for seed in (11, 12, 13)]
    model = FixedModel({content_hash(image): _sure("none") for image in [photo, *copies]})

    def run_triage():
        decisions = read_decisions(tmp_path)
        lines = triage(load_correction_rows(tmp_path), "side", model, decisions=decisions)
        append_decisions(tmp_path, lines)
        return {line["record_id"]: line for line in lines}

    first = store.add(photo, SHOWN, "back", consent=True)
    second = store.add(copies[0], SHOWN, "back", consent=True)
    lines = run_triage()
    group = lines[first]["group"]
    assert lines[first]["decision"] == lines[second]["decision"] == "queued" and lines[second]["group"] == group
    # Rejecting one record rejects its queued copies with the same label at once ...
    append_decisions(tmp_path, review_lines(read_decisions(tmp_path), [first], "rejected"))
    decisions = read_decisions(tmp_path)
    assert decisions[(first, "side")]["decision"] == decisions[(second, "side")]["decision"] == "rejected"
    # ... and copies sent later follow it, in the same group, also once the first record is gone.
    third = store.add(copies[1], SHOWN, "back", consent=True)
    line = run_triage()[third]
    assert (line["decision"], line["group"]) == ("rejected", group)
    assert "near-duplicate of a photo a reviewer rejected" in line["reason"]
    store.remove(first)
    fourth = store.add(copies[2], SHOWN, "back", consent=True)
    line = run_triage()[fourth]
    assert (line["decision"], line["group"]) == ("rejected", group)
    chosen, _ = select_corrections(load_correction_rows(tmp_path), read_decisions(tmp_path), "side")
    assert chosen == []  # no copy of the rejected photo reaches training


# ---------------------------------------------------------------- a flood of wrong corrections

RECIPE = ["--task", "side", "--arch", "wearnet", "--image-size", "32", "--batch-size", "8", "--workers", "0",
          "--epochs", "8", "--lr", "3e-2", "--scheduler", "cosine", "--patience", "0", "--keep", "last",
          "--no-augment", "--seed", "0", "--no-progress"]


@pytest.fixture(scope="module")
def confident_model(side_data, tmp_path_factory) -> Path:
    """A side model sure of some photos it never saw (and wrong about others)."""
    out = tmp_path_factory.mktemp("confident-side")
    assert cli_main(["train", *RECIPE, "--data", str(side_data), "--output-dir", str(out)]) == 0
    return out


def _top(probabilities: dict[str, float]) -> str:
    return max(probabilities, key=probabilities.get)


def test_a_flood_of_contradicting_corrections_is_queued_and_cannot_flip_the_model_while_honest_ones_train(
        confident_model, side_data, pool, tmp_path, capsys):
    model = PhoneGradeClassifier.from_pretrained(confident_model)
    photos = [load_image(p) for p in pool]
    predicted = model.predict(photos)
    truth = [p.parent.name for p in pool]
    sure = [i for i, p in enumerate(predicted) if p[_top(p)] >= 0.9]
    unsure_wrong = [i for i, p in enumerate(predicted) if p[_top(p)] < 0.8 and _top(p) != truth[i]]
    assert len(sure) >= 3 and len(unsure_wrong) >= 3, (len(sure), len(unsure_wrong))
    store = CorrectionStore(tmp_path / "corrections").ensure()
    # The flood: 50 records of 3 photos the model is sure of, each labelled with a label the model does not give
    # it (nor the truth): the photos themselves, then slightly varied copies.
    targets = sure[:3]
    poison = {i: next(label for label in model.labels if label not in (_top(predicted[i]), truth[i])) for i in targets}
    for n in range(50):
        i = targets[n % 3]
        store.add(photos[i] if n < 3 else varied_copy(photos[i], n), SHOWN, poison[i], consent=True)
    triage_command = ["corrections", "triage", "--source", str(store.root), "--model", str(confident_model)]
    assert cli_main(triage_command) == 0
    assert "0 accepted, 50 queued for review as 3 items" in capsys.readouterr().out

    def train(name, *extra):
        out = tmp_path / name
        assert cli_main(["train", *RECIPE, "--data", str(side_data), "--output-dir", str(out), "--corrections",
                         str(store.root), *extra]) == 0
        return PhoneGradeClassifier.from_pretrained(out), json.loads((out / "config.json").read_text())

    def probabilities(classifier, indices):
        return classifier.predict_proba([photos[i] for i in indices])

    # The control is the same recipe without corrections: the confident model itself.
    accepted_only, config = train("accepted-only")
    assert (config["corrections"]["queued"], config["corrections"]["used"]) == (50, 0)
    assert torch.allclose(probabilities(accepted_only, targets), probabilities(model, targets), atol=1e-6)
    everything, config = train("all", "--corrections-all")  # what the flood would have done untriaged
    assert config["corrections"]["used"] == 50
    flipped = [_top(p) == poison[i] for p, i in zip(everything.predict([photos[i] for i in targets]), targets,
                                                     strict=True)]
    assert sum(flipped) >= 2, flipped

    honest = unsure_wrong[:4]
    for i in honest:  # the model's real mistakes, on photos it was unsure of
        store.add(photos[i], SHOWN, truth[i], consent=True)
    assert cli_main(triage_command) == 0
    assert f"{len(honest)} accepted, 50 queued for review as 3 items" in capsys.readouterr().out
    fixed_model, config = train("with-honest")
    assert (config["corrections"]["accepted"], config["corrections"]["used"]) == (len(honest), len(honest))
    assert "50 queued for review" in (tmp_path / "with-honest" / "README.md").read_text()
    before, after = probabilities(model, honest), probabilities(fixed_model, honest)
    right = [model.labels.index(truth[i]) for i in honest]
    assert all(after[k, r] > before[k, r] for k, r in enumerate(right)), (before, after)  # all moved to the truth
    assert sum(after[k].argmax() == r for k, r in enumerate(right)) >= len(honest) - 1  # and most are now right
