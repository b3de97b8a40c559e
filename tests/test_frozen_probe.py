"""benchmarks/frozen_probe.py: leave-one-source-out figures of frozen-trunk recipes from features computed once."""

import importlib.util
import json
import types
from pathlib import Path

import numpy as np
import torch

from .test_crossval import _grouped_side_folders

ROOT = Path(__file__).resolve().parents[1]


def _probe_module():
    spec = importlib.util.spec_from_file_location("frozen_probe", ROOT / "benchmarks" / "frozen_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_head_is_trained_without_any_photo_of_the_group_it_scores(monkeypatch):
    probe = _probe_module()
    groups = np.array(["a"] * 6 + ["b"] * 6 + ["c"] * 6 + ["(extra training)"] * 3)
    labels = np.arange(len(groups)) % 3
    scored = groups != "(extra training)"
    # Feature 0 is the photo's index, so what each head trains on can be read back.
    features = np.stack([np.arange(len(groups)), np.zeros(len(groups))], axis=1).astype(np.float32)
    trained_on = []

    def recording_train_head(x, y, num_classes, *args, **kwargs):
        trained_on.append(set(x[:, 0].long().tolist()))
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, num_classes))

    monkeypatch.setattr(probe, "train_head", recording_train_head)
    args = types.SimpleNamespace(prior_in_training=False, flip_train=False, flip_test=False, heads=2, epochs=1,
                                 lr=1e-3, weight_decay=0.0, gamma=2.0, class_weights="auto")
    log_probabilities = probe.leave_one_out(features, None, np.zeros(len(groups)), labels, groups, scored, args,
                                            None, 2, 0)

    assert len(trained_on) == 3 * 2  # two heads per held-out group, no fold for the extra training photos
    for held_out, seen in zip(["a", "a", "b", "b", "c", "c"], trained_on, strict=True):
        held = set(np.flatnonzero(groups == held_out).tolist())
        assert not seen & held
        assert seen == set(range(len(groups))) - held  # every other photo, the extra training ones included
    assert np.isfinite(log_probabilities[scored]).all() and np.isnan(log_probabilities[~scored]).all()
    predictions = probe.predict(log_probabilities, ["front", "back", "none"], 0.0)
    assert (predictions[scored] >= 0).all() and (predictions[~scored] == -1).all()


def test_the_clean_bias_for_each_source_is_chosen_on_the_other_sources_only():
    probe = _probe_module()
    names = ["major_scratch", "minor_scratch", "no_scratch"]
    groups = np.array(["a"] * 4 + ["b"] * 4)
    labels = np.full(8, 2)  # every photo clean
    # Source a's clean photos look damaged (no_scratch 1.0 below major), source b's look clean.
    log_p = np.log(np.array([[0.6, 0.05, 0.35]] * 4 + [[0.2, 0.1, 0.7]] * 4))
    assert (probe.predict(log_p, names, 0.0) == [0] * 4 + [2] * 4).all()
    assert (probe.predict(log_p, names, 1.0) == 2).all()  # log(0.35) + 1 > log(0.6)

    chosen, picks = probe.smallest_bias_within(log_p, labels, groups, np.ones(8, bool), names, [0.0, 1.0, 2.0], 0.0)
    # a's bias comes from b, whose clean photos need none: a stays graded damaged; b's comes from a, which needs 1.
    assert picks == {"a": 0.0, "b": 1.0}
    assert (chosen == [0] * 4 + [2] * 4).all()


def test_the_probe_scores_every_source_and_reuses_its_features(side_data, tmp_path, capsys):
    a, b = _grouped_side_folders(tmp_path, side_data)
    probe = _probe_module()
    output, cache = tmp_path / "probe.jsonl", tmp_path / "cache"
    common = ["--task", "side", "--data", str(a), str(b), "--arch", "efficientnet_lite0", "--sizes", "32",
              "--epochs", "2", "--cache-dir", str(cache), "--output", str(output)]
    probe.main([*common, "--priors", "0", "0.1"])
    first = [json.loads(line) for line in output.read_text().splitlines()]
    cached = sorted(cache.iterdir())
    probe.main([*common, "--priors", "0"])
    again = json.loads(output.read_text().splitlines()[-1])

    assert [r["prior"] for r in first] == [0.0, 0.1]
    assert first[1]["phone_classes"] == [487, 605]  # what the prior counted, recorded though it was the default
    assert set(first[0]["runs"][0]["per_group"]) == {"phones", "objects", "b"}
    assert set(first[0]["runs"][0]["per_kind"]) == {"front_kind", "back_kind", "none_kind", "b"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in first)
    assert len(cached) == 2 and sorted(cache.iterdir()) == cached  # one file per folder, computed once
    assert again["runs"] == first[0]["runs"]  # same features and seed: the same figures


def test_a_centre_crop_is_computed_and_cached_apart_from_the_whole_photo(side_data, tmp_path):
    a, b = _grouped_side_folders(tmp_path, side_data)
    probe = _probe_module()
    output, cache = tmp_path / "probe.jsonl", tmp_path / "cache"
    probe.main(["--task", "side", "--data", str(a), str(b), "--extra-train", f"{side_data / 'val' / 'front'}=front",
                "--arch", "efficientnet_lite0", "--sizes", "32", "--crop-pcts", "1.0", "0.75", "--epochs", "1",
                "--cache-dir", str(cache), "--output", str(output)])

    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["crop_pct"] for r in results] == [1.0, 0.75]
    assert results[0]["extra_train"] == ["front=front"]  # the folder's name, not where it lies on this machine
    whole = sorted(p for p in cache.iterdir() if "crop" not in p.name)
    cropped = sorted(p for p in cache.iterdir() if "crop0.75" in p.name)
    assert len(whole) == len(cropped) == 3  # two scored folders and the extra one
    assert not np.allclose(np.load(whole[0])["features"], np.load(cropped[0])["features"])
