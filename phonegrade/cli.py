"""The `phonegrade` command: a list of subcommands (`phonegrade.commands`), and the one place where an error meant
for people becomes one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys

from .commands import (
    apply_recipe,
    corrections,
    crossval,
    demo,
    ensemble,
    evaluate,
    export,
    predict,
    promote,
    synth,
    train,
    web,
)
from .errors import PhoneGradeError
from .version import __version__

COMMANDS = (synth, train, crossval, ensemble, evaluate, predict, export, corrections, promote, demo, web)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phonegrade", description="Grade photos of mobile phones.")
    parser.add_argument("--version", action="version", version=f"phonegrade {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        apply_recipe(parser, argv)  # --config RECIPE: its options become the defaults of train and crossval
        args = parser.parse_args(argv)
        return args.run(args) or 0
    except (PhoneGradeError, FileNotFoundError, FileExistsError) as err:
        command = argv[0] if argv and not argv[0].startswith("-") else ""
        print(f"phonegrade {command}: error: {err}".replace("  ", " "), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
