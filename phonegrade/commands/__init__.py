"""The `phonegrade` subcommands, one module each. Every module has `register(subparsers)`, which adds its parser
and sets `run` (args → exit status) as its default; `phonegrade.cli` lists them. Commands use the library and never
each other; what several of them share (the help format, the training options) is here."""

from __future__ import annotations

import argparse
import dataclasses

from ..errors import ConfigError
from ..models import check_arch
from ..train_config import TrainConfig, load_recipe


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, except where there is nothing to show (None, an unset flag) or the help
    already says it in words ("default: ...")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


# How --model is described wherever a trained model is read.
MODEL_HELP = "model folder, Hub model id, or side-default / scratch-default (the embedded models)"


def _arch_option(value: str) -> str:
    try:
        return check_arch(value)
    except ConfigError as err:  # argparse shows this message as it is
        raise argparse.ArgumentTypeError(str(err)) from None


# A TrainConfig field's annotation → how argparse reads its option.
ARGUMENT_KINDS = {"int": {"type": int}, "int | None": {"type": int}, "float": {"type": float},
                  "float | None": {"type": float}, "str": {}, "str | None": {}, "bool": {"action": "store_true"},
                  "list[str]": {"nargs": "+"}, "list[int]": {"nargs": "+", "type": int},
                  "str | list[str]": {"nargs": "+"}, "str | list[str] | None": {"nargs": "+"}}


def add_training_arguments(parser: argparse.ArgumentParser, single_run: bool = True) -> None:
    """TrainConfig's fields as options, with the defaults, help and choices written there; single_run=False leaves
    out those that concern one run's data split and output (cross-validation makes its own splits)."""
    parser.add_argument("--config", metavar="RECIPE.yaml",
                        help="a recipe file of training options (YAML or JSON, the option names as keys), or the name "
                             "of one installed with phonegrade (side-default, scratch-default); options given on the "
                             "command line override it")
    for spec in dataclasses.fields(TrainConfig):
        meta = dict(spec.metadata)
        if meta.pop("single_run") and not single_run:
            continue
        crossval_default, crossval_help = meta.pop("crossval_default", None), meta.pop("crossval_help", None)
        settings = {**ARGUMENT_KINDS[spec.type], **meta}
        if not single_run and crossval_help:
            settings["help"] = crossval_help
        if not settings.get("required"):
            default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
            settings["default"] = crossval_default if not single_run and crossval_default else default
        if spec.name == "arch":
            settings["type"] = _arch_option
        parser.add_argument("--" + spec.name.replace("_", "-"), dest=spec.name, **settings)


def apply_recipe(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """When `argv` names a recipe file (--config FILE), its options become the defaults of the command's parser,
    so that options given on the command line override them. `parser` is the `phonegrade` parser (the command is
    the first word of `argv`) or a command's own parser."""
    subcommands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if subcommands is not None:
        parser = next((subcommands.choices[word] for word in argv if word in subcommands.choices), None)
    if parser is None or "--config" not in parser._option_string_actions:
        return
    find = argparse.ArgumentParser(add_help=False)
    find.add_argument("--config")
    path = find.parse_known_args(argv)[0].config
    if not path:
        return
    recipe = load_recipe(path)
    actions = {action.dest: action for action in parser._actions}
    foreign = sorted(set(recipe) - set(actions))
    if foreign:
        raise ConfigError(f"--config {path}: {', '.join(foreign)} cannot be used with `{parser.prog}`")
    for key in recipe:
        actions[key].required = False  # given by the recipe: the command line need not repeat it
    parser.set_defaults(**recipe)
