import argparse
import re
import subprocess
import sys

import pytest

from phonegrade.cli import main as cli_main


def registered_commands() -> list[str]:
    from phonegrade.cli import build_parser

    (subcommands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return list(subcommands.choices)


def test_help_lists_every_command():
    commands = registered_commands()
    assert {"synth", "train", "predict", "corrections"} <= set(commands)  # the parser was read right
    result = subprocess.run([sys.executable, "-m", "phonegrade.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    listed = re.findall(r"^ {4}(\w+)(?: |$)", result.stdout, re.M)  # the COMMAND list: "    name   help"
    assert listed == commands


@pytest.mark.parametrize("command", registered_commands())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main([command, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: phonegrade {command} ")


def test_help_shows_defaults_but_not_empty_ones(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "training epochs (fewer with early stopping) (default: 30)" in text
    assert "(default: 0)" in text  # --seed: a zero is a default to show
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "else min(4, CPU cores))" in text  # --workers says its default in words, once


def test_synth_command_writes_an_imagefolder(tmp_path, capsys):
    assert cli_main(["synth", "--task", "scratch", "--out", str(tmp_path), "--per-class", "5", "--size", "32"]) == 0
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["major_scratch", "minor_scratch", "no_scratch"]
    assert len(list((tmp_path / "val" / "no_scratch").iterdir())) == 1
    assert "wrote 15 synthetic scratch images" in capsys.readouterr().out


def test_predict_reports_unreadable_files_and_exits_non_zero(trained_side_model, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert cli_main(["predict", "--model", str(trained_side_model), str(bad)]) == 1
    assert "not a readable image" in capsys.readouterr().out


def test_missing_model_is_one_clear_error_line(tmp_path, capsys):
    assert cli_main(["predict", "--model", str(tmp_path / "nothing"), "x.jpg"]) == 2
    assert "error:" in capsys.readouterr().err


def test_demo_help_lists_the_options_app_py_has(capsys):
    import runpy

    from .conftest import ROOT

    def options(main) -> set[str]:
        with pytest.raises(SystemExit) as exited:
            main(["--help"])
        assert exited.value.code == 0
        return set(re.findall(r"(--[a-z][a-z-]+)", capsys.readouterr().out))

    listed = options(lambda argv: cli_main(["demo", *argv]))
    assert {"--side-model", "--scratch-model", "--ask-margin", "--corrections-dir", "--corrections-repo", "--host",
            "--port", "--max-upload-mb", "--analytics"} <= listed
    assert options(runpy.run_path(str(ROOT / "app.py"))["main"]) == listed


def test_demo_refuses_an_ask_margin_outside_0_to_1(capsys):
    with pytest.raises(SystemExit):
        cli_main(["demo", "--ask-margin", "1.5"])
    assert "--ask-margin: must be between 0 (never ask) and 1" in capsys.readouterr().err


def test_the_dockerfile_serves_phonegrade_demo_on_its_exposed_port():
    import json

    from phonegrade.cli import build_parser

    from .conftest import ROOT

    dockerfile = (ROOT / "Dockerfile").read_text()
    (command,) = re.findall(r"^CMD (\[.*\])$", dockerfile, re.M)
    program, *argv = json.loads(command)
    args = build_parser().parse_args(argv)
    assert program == "phonegrade" and args.run.__module__ == "phonegrade.commands.demo"
    assert args.host == "0.0.0.0" and f"EXPOSE {args.port}" in dockerfile
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)


def test_python_dash_m_phonegrade_is_the_command_line():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "phonegrade", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "crossval" in result.stdout and "predict" in result.stdout


def test_start_up_survives_library_releases_that_move_private_helpers(monkeypatch, caplog):
    import gradio.route_utils
    import huggingface_hub.utils._http

    from phonegrade.corrections import bound_hub_requests
    from phonegrade.demo import _delete_uploads

    # As if a release had moved them: importing them by name fails.
    monkeypatch.delattr(huggingface_hub.utils._http, "default_client_factory")
    monkeypatch.delattr(gradio.route_utils, "delete_files_created_by_app")
    bound_hub_requests()
    _delete_uploads(demo=None)
    assert "Hub requests are not bounded" in caplog.text and "uploads are left to Gradio" in caplog.text
