"""`phonegrade web`: a static site that grades photos in the visitor's browser (docs/deploy.md).

    phonegrade web --out site/                                   # the embedded default models, ort from a CDN
    phonegrade web --out site/ --ort-from node_modules/ --flag-url https://user-phonegrade.hf.space/
"""

from __future__ import annotations

import argparse

from ..classifier import PhoneGradeClassifier
from ..confidence import DEFAULT_ASK_MARGIN
from ..defaults import DEFAULT_MODELS
from ..web import ORT_VERSION, build_site
from . import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "web", formatter_class=HelpFormatter, help="write a static site that grades photos in the browser",
        description="Write a static site (one page, plain JavaScript, the two models as ONNX) that grades photos "
                    "on the visitor's device with onnxruntime-web: nothing is uploaded. Serve the folder from any "
                    "static host.")
    parser.add_argument("--out", required=True, help="folder to write the site into")
    parser.add_argument("--side", default=DEFAULT_MODELS["side"], metavar="MODEL",
                        help="side model: folder or Hub id (default: the embedded one)")
    parser.add_argument("--scratch", default=DEFAULT_MODELS["scratch"], metavar="MODEL",
                        help="scratch model: folder or Hub id (default: the embedded one)")
    parser.add_argument("--ort-from", metavar="DIR",
                        help=f"copy onnxruntime-web from a local npm install (`npm install onnxruntime-web@"
                             f"{ORT_VERSION}` in DIR) for fully offline hosting (default: load it from a pinned CDN "
                             f"URL with a subresource-integrity hash)")
    parser.add_argument("--flag-url", metavar="URL",
                        help="a phonegrade Gradio demo whose /flag receives corrections the visitor chooses to send "
                             "(after ticking consent); without it the page offers no report")
    parser.add_argument("--ask-margin", type=float, default=DEFAULT_ASK_MARGIN,
                        help="ask the visitor to confirm when a model's top two probabilities are closer than this")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    side = PhoneGradeClassifier.from_pretrained(args.side)
    scratch = PhoneGradeClassifier.from_pretrained(args.scratch)
    out = build_site(args.out, side, scratch, ort_from=args.ort_from, flag_url=args.flag_url,
                     ask_margin=args.ask_margin)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB): serve it from any static host, e.g. "
          f"`python -m http.server --directory {out}`")
    return 0
