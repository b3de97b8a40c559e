"""What a user installs is what runs: the wheel, installed outside the checkout, trains, loads its default models
and builds the demo."""

import os
import shutil
import subprocess
import sys
import textwrap

from .conftest import ROOT

INSTALLED_USE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import phonegrade
    from phonegrade import DEFAULT_MODELS, EXAMPLES_DIR, PhoneGradeClassifier
    from phonegrade.cli import main as cli_main
    from phonegrade.corrections import CorrectionStore
    from phonegrade.demo import build_demo
    from phonegrade.grading import Grader, load_model, read_examples

    site, data = Path(sys.argv[1]), sys.argv[2]
    assert Path(phonegrade.__file__).is_relative_to(site), phonegrade.__file__  # the wheel, not the checkout
    assert cli_main(["train", "--task", "side", "--arch", "wearnet", "--data", data, "--output-dir", "model",
                     "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--workers", "0",
                     "--no-progress"]) == 0
    assert "library_name: phonegrade" in Path("model/README.md").read_text()
    from phonegrade.train_config import load_recipe
    assert load_recipe("side-default")["arch"] == "efficientnet_lite2"  # the recipes are installed too
    from importlib.resources import files
    assert all((files("phonegrade.site") / name).is_file() for name in ("index.html", "grade.js", "preprocess.js"))
    side, scratch = load_model(DEFAULT_MODELS["side"]), load_model(DEFAULT_MODELS["scratch"])
    example = sorted(Path(EXAMPLES_DIR).glob("*.png"))[0]
    assert cli_main(["predict", "--model", "scratch-default", str(example), "--no-progress"]) == 0  # by its name
    assert (side.classifier.task, scratch.classifier.task) == ("side", "scratch")
    store = CorrectionStore("corrections").ensure()  # writes the dataset card from the installed template
    assert Path("corrections/README.md").read_text().startswith("---")
    examples = read_examples(EXAMPLES_DIR)  # the renders and their labels.csv are installed too
    assert examples and all(example.side for example in examples)
    demo = build_demo(Grader(side, scratch, store), examples)
    import contextlib, io
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), contextlib.suppress(SystemExit):
        cli_main(["demo", "--help"])  # `phonegrade demo` serves the page from the wheel, without app.py
    assert "--ask-margin" in shown.getvalue() and "--corrections-repo" in shown.getvalue()
    print("installed phonegrade works:", type(demo).__name__)
""")


def _source_copy(folder):
    """The files a release is built from (a clean checkout's), without local runs, corrections or caches."""
    ignore = shutil.ignore_patterns("__pycache__", "checkpoints", "*.egg-info")
    for name in ("pyproject.toml", "README.md", "LICENSE", "data/__init__.py"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, folder / name)
    for name in ("phonegrade", "hub_cards", "recipes", "data/models", "data/examples"):
        shutil.copytree(ROOT / name, folder / name, ignore=ignore)
    return folder


def test_the_wheel_installed_outside_the_checkout_trains_loads_its_defaults_and_builds_the_demo(side_data,
                                                                                               tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    _source_copy(source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("phonegrade-*.whl")
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)  # the code's licence travels with it
    assert "License-Expression: Apache-2.0" in metadata and "Project-URL: Homepage" in metadata
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    # PYTHONPATH puts the installed copy ahead of the checkout's editable install.
    env = {**os.environ, "PYTHONPATH": str(site), "GRADIO_ANALYTICS_ENABLED": "False"}
    result = subprocess.run([sys.executable, "-c", INSTALLED_USE, str(site), str(side_data)], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "installed phonegrade works" in result.stdout
