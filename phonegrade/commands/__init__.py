"""The `phonegrade` subcommands, one module each. Every module has `register(subparsers)`, which adds its parser
and sets `run` (args → exit status) as its default; `phonegrade.cli` lists them. Commands use the library and never
each other."""

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, except where there is nothing to show (None, an unset flag) or the help
    already says it in words ("default: ...")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)
