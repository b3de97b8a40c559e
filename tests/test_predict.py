import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from phonegrade import PhoneGradeClassifier, create_model
from phonegrade.cli import main as cli_main
from phonegrade.images import load_image

from .conftest import ROOT


@pytest.fixture(scope="module")
def model(trained_side_model):
    return PhoneGradeClassifier.from_pretrained(trained_side_model)


@pytest.fixture(scope="module")
def photos(side_data):
    return sorted((side_data / "val").rglob("*.png")) + sorted((side_data / "train" / "back").rglob("*.png"))


def plain_probabilities(model, paths) -> list[list[float]]:
    """The reference: a contiguous-layout copy of the net, one image at a time, no DataLoader."""
    net = create_model(model.arch, len(model.labels))
    net.load_state_dict(model.net.state_dict())
    net.eval()
    with torch.no_grad():
        return [torch.softmax(net(model.transform(load_image(p))[None]), dim=1)[0].tolist() for p in paths]


def test_batched_predict_with_workers_equals_one_image_at_a_time(model, photos):
    batched = model.predict(photos, batch_size=4, workers=2, channels_last=True)
    one_by_one = [model.predict([p])[0] for p in photos]
    assert len(batched) == len(photos) == 16
    for a, b, reference in zip(batched, one_by_one, plain_probabilities(model, photos), strict=True):
        assert list(a.values()) == pytest.approx(list(b.values()), abs=1e-5)
        assert list(a.values()) == pytest.approx(reference, abs=1e-5)


def test_predict_takes_a_datasets_dataset(model, photos):
    import datasets

    dataset = datasets.Dataset.from_dict({"image": [str(p) for p in photos]}).cast_column("image", datasets.Image())
    from_dataset = model.predict(dataset, batch_size=5)
    for a, b in zip(from_dataset, model.predict(photos), strict=True):
        assert list(a.values()) == pytest.approx(list(b.values()), abs=1e-5)


def test_csv_output_has_one_row_per_image_and_reports_unreadable_files(model, trained_side_model, side_data,
                                                                       tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "grades.csv"
    code = cli_main(["predict", "--model", str(trained_side_model), str(side_data / "val"), str(bad),
                     "--output", str(out), "--batch-size", "4", "--workers", "1"])
    assert code == 1
    assert "not a readable image" in capsys.readouterr().err
    with open(out, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["image", "label", "front", "back", "none", "error"]
    val_photos = sorted((side_data / "val").rglob("*.png"))
    assert [row["image"] for row in rows] == [str(p) for p in val_photos] + [str(bad)]
    for row, expected in zip(rows, model.predict(val_photos), strict=False):
        assert [float(row[label]) for label in model.labels] == pytest.approx(list(expected.values()), abs=1e-6)
        assert row["label"] == max(expected, key=expected.get) and row["error"] == ""
    assert rows[-1]["label"] == "" and "not a readable image" in rows[-1]["error"]


def test_jsonl_output_matches_the_printed_json_lines(trained_side_model, side_data, tmp_path, capsys):
    out = tmp_path / "grades.jsonl"
    assert cli_main(["predict", "--model", str(trained_side_model), str(side_data / "val"), "--output", str(out)]) == 0
    assert "wrote 6 predictions" in capsys.readouterr().out
    assert cli_main(["predict", "--model", str(trained_side_model), str(side_data / "val"), "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == printed and len(written) == 6
    assert set(written[0]) == {"image", "label", "probabilities"}


def test_predict_reads_a_saved_datasets_folder(model, trained_side_model, photos, tmp_path, capsys):
    import datasets

    folder = tmp_path / "catalog"
    datasets.Dataset.from_dict({"image": [str(p) for p in photos[:5]]}).cast_column(
        "image", datasets.Image()).save_to_disk(str(folder))
    assert cli_main(["predict", "--model", str(trained_side_model), str(folder), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["image"] for row in rows] == [f"{folder}#{i}" for i in range(5)]
    for row, expected in zip(rows, model.predict(photos[:5]), strict=True):
        assert row["probabilities"] == pytest.approx(expected, abs=1e-6)


def test_predict_names_the_rows_of_a_saved_dataset_dict_by_split(model, trained_side_model, photos, tmp_path,
                                                                 capsys):
    import datasets

    def images(paths):
        return datasets.Dataset.from_dict({"image": [str(p) for p in paths]}).cast_column("image", datasets.Image())

    folder = tmp_path / "catalog"
    datasets.DatasetDict({"train": images(photos[:2]), "test": images(photos[2:5])}).save_to_disk(str(folder))
    assert cli_main(["predict", "--model", str(trained_side_model), str(folder), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["image"] for row in rows] == [f"{folder}:train#0", f"{folder}:train#1", f"{folder}:test#0",
                                              f"{folder}:test#1", f"{folder}:test#2"]
    for row, expected in zip(rows, model.predict(photos[:5]), strict=True):
        assert row["probabilities"] == pytest.approx(expected, abs=1e-6)


def test_output_must_be_csv_or_jsonl(trained_side_model, side_data, capsys):
    assert cli_main(["predict", "--model", str(trained_side_model), str(side_data), "--output", "x.txt"]) == 2
    assert "--output must end in .csv or .jsonl" in capsys.readouterr().err


def test_two_processes_share_the_images_and_each_is_graded_once(trained_side_model, side_data, tmp_path):
    # `accelerate launch --cpu` starts a single process; --multi_gpu starts several, which pool over the CPU here.
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"nope")
    inputs = [str(side_data), str(bad)]
    out = tmp_path / "sharded.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
         "-m", "phonegrade.cli", "predict", "--model", str(trained_side_model), *inputs, "--output", str(out),
         "--batch-size", "4", "--workers", "0", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "graded 37 images in 2 processes" in result.stderr, result.stderr
    assert result.returncode != 0  # the unreadable file sets exit status 1
    sharded = [json.loads(line) for line in out.read_text().splitlines()]

    single = tmp_path / "single.jsonl"
    assert cli_main(["predict", "--model", str(trained_side_model), *inputs, "--output", str(single)]) == 1
    expected = [json.loads(line) for line in single.read_text().splitlines()]
    assert [r["image"] for r in sharded] == [r["image"] for r in expected]  # every image once, in input order
    assert len({r["image"] for r in sharded}) == 37
    for a, b in zip(sharded, expected, strict=True):
        assert a.get("label") == b.get("label") and a.get("error") == b.get("error")
        assert a.get("probabilities", {}) == pytest.approx(b.get("probabilities", {}), abs=1e-5)


def test_an_unreadable_image_stops_predict_without_leaving_inference_mode_on(model, photos):
    from phonegrade.errors import ImageLoadError

    with pytest.raises(ImageLoadError) as info:
        model.predict([photos[0], b"not an image", photos[1]])
    assert info.value is not None and not torch.is_inference_mode_enabled()
    assert torch.ones(1, requires_grad=True).mul(2).requires_grad  # autograd still records


@pytest.mark.parametrize(("env", "expected"), [({}, False), ({"ACCELERATE_USE_CPU": "1"}, True),
                                               ({"WORLD_SIZE": "2"}, True)])
def test_accelerate_is_told_to_use_the_cpu_when_launched_so_or_pooled_without_a_gpu(monkeypatch, env, expected):
    from phonegrade.utils import accelerate_on_cpu

    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert accelerate_on_cpu() is expected
