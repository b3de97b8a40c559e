"""`phonegrade demo`: serve the grading page (the same as `python app.py` in a checkout).

    phonegrade demo                                  # http://127.0.0.1:7860, the embedded default models
    phonegrade demo --host 0.0.0.0 --corrections-dir /data/corrections --corrections-repo user/corrections
"""

from __future__ import annotations

import argparse

from ..demo import add_options, serve
from . import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", formatter_class=HelpFormatter, help="serve the grading page",
        description="Serve the Gradio page that grades uploaded photos and collects corrections (docs/deploy.md). "
                    "Every option can also be set with the environment variable in its help.")
    add_options(parser, corrections_dir="data/corrections")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return serve(args, prog="phonegrade demo")
