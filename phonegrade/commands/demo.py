"""`phonegrade demo`: serve the grading page (the same as `python app.py` in a checkout).

    phonegrade demo                                  # http://127.0.0.1:7860, the embedded default models
    phonegrade demo --host 0.0.0.0 --corrections-dir /data/corrections --corrections-repo user/corrections

With no arguments it runs offline on the embedded default models (phonegrade.DEFAULT_MODELS). Every option can also
be set with the environment variable in its help. Hub access uses HF_TOKEN / `hf auth login` and honours
HF_ENDPOINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import torch

from ..confidence import DEFAULT_ASK_MARGIN
from ..corrections import CorrectionStore, HubPusher, bound_hub_requests
from ..defaults import DEFAULT_MODELS, EXAMPLES_DIR
from ..demo import DEFAULT_CONCURRENCY, build_demo, launch
from ..errors import ConfigError, ModelLoadError
from ..grading import (
    DEFAULT_FLAG_LIMIT,
    DEFAULT_MAX_UPLOAD_MB,
    FlagLimit,
    Grader,
    examples_note,
    load_model,
    read_examples,
)
from . import HelpFormatter

DESCRIPTION = ("Serve the Gradio page that grades uploaded photos and collects corrections (docs/deploy.md). Every "
               "option can also be set with the environment variable in its help.")
log = logging.getLogger("phonegrade.demo")


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", formatter_class=HelpFormatter, help="serve the grading page",
                                   description=DESCRIPTION)
    add_options(parser, corrections_dir="data/corrections")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return serve(args, prog="phonegrade demo")


def main(argv: list[str] | None = None, prog: str = "phonegrade demo",
         corrections_dir: str = "data/corrections") -> int:
    """The command on its own (app.py): `prog` names it in help and errors."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, formatter_class=HelpFormatter)
    add_options(parser, corrections_dir=corrections_dir)
    return serve(parser.parse_args(argv), prog=prog)


def _ask_margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 (never ask) and 1, got {text}")
    return value


def add_options(parser: argparse.ArgumentParser, corrections_dir: str) -> None:
    """The demo's options; each can also be set with the environment variable in its help."""
    env = os.environ.get
    parser.add_argument("--side-model", default=env("PHONEGRADE_SIDE_MODEL", DEFAULT_MODELS["side"]),
                        help="side model: local folder or Hub model id [PHONEGRADE_SIDE_MODEL]")
    parser.add_argument("--side-revision", default=env("PHONEGRADE_SIDE_REVISION"), help="Hub revision")
    parser.add_argument("--scratch-model", default=env("PHONEGRADE_SCRATCH_MODEL", DEFAULT_MODELS["scratch"]),
                        help="scratch model: local folder or Hub model id [PHONEGRADE_SCRATCH_MODEL]")
    parser.add_argument("--scratch-revision", default=env("PHONEGRADE_SCRATCH_REVISION"), help="Hub revision")
    parser.add_argument("--ask-margin", type=_ask_margin,
                        default=env("PHONEGRADE_ASK_MARGIN", str(DEFAULT_ASK_MARGIN)),  # argparse checks it
                        help="ask the uploader to confirm when a model's top two probabilities are closer than this "
                             "(0: never ask; docs/demo.md) [PHONEGRADE_ASK_MARGIN]")
    parser.add_argument("--corrections-dir", default=env("PHONEGRADE_CORRECTIONS_DIR", corrections_dir),
                        help="where flagged corrections are stored [PHONEGRADE_CORRECTIONS_DIR]")
    parser.add_argument("--corrections-repo", default=env("PHONEGRADE_CORRECTIONS_REPO"),
                        help="Hub dataset repo the corrections are pushed to in the background "
                             "[PHONEGRADE_CORRECTIONS_REPO]")
    parser.add_argument("--public-corrections", action="store_true",
                        default=env("PHONEGRADE_PUBLIC_CORRECTIONS") == "1",
                        help="create --corrections-repo as a public dataset (default: private; an existing repo keeps "
                             "its visibility) [PHONEGRADE_PUBLIC_CORRECTIONS=1]")
    parser.add_argument("--push-every", type=float, default=float(env("PHONEGRADE_PUSH_EVERY", "300")),
                        help="seconds between background pushes of new corrections")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--max-upload-mb", type=float,
                        default=float(env("PHONEGRADE_MAX_UPLOAD_MB", str(DEFAULT_MAX_UPLOAD_MB))),
                        help="largest accepted upload")
    parser.add_argument("--concurrency", type=int,
                        default=int(env("PHONEGRADE_CONCURRENCY", str(DEFAULT_CONCURRENCY))),
                        help="requests processed at once (the rest wait in Gradio's queue)")
    parser.add_argument("--torch-threads", type=int,
                        default=int(env("PHONEGRADE_TORCH_THREADS", "0")) or None,
                        help="threads each prediction may use (default: CPU cores / --concurrency, at least 1: "
                             "requests running at once then share the cores instead of fighting over them; "
                             "docs/performance.md) [PHONEGRADE_TORCH_THREADS]")
    parser.add_argument("--upload-dir",
                        default=env("GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / "phonegrade-uploads")),
                        help="Gradio's cache of uploaded files [GRADIO_TEMP_DIR]")
    parser.add_argument("--flag-limit", type=int, default=int(env("PHONEGRADE_FLAG_LIMIT", str(DEFAULT_FLAG_LIMIT))),
                        help="corrections one client may send per minute (0: no limit) [PHONEGRADE_FLAG_LIMIT]")
    parser.add_argument("--behind-proxy", action="store_true", default=env("PHONEGRADE_BEHIND_PROXY") == "1",
                        help="tell clients apart by the X-Forwarded-For address a reverse proxy sets (Hugging Face "
                             "Spaces, nginx); only behind such a proxy, as clients can forge it "
                             "[PHONEGRADE_BEHIND_PROXY=1]")
    parser.add_argument("--analytics", action="store_true", default=env("PHONEGRADE_ANALYTICS") == "1",
                        help="send Gradio's usage analytics to gradio.app (off by default: the demo makes no "
                             "outside connection unless a Hub repo is given) [PHONEGRADE_ANALYTICS=1]")
    parser.add_argument("--examples", metavar="DIR", default=env("PHONEGRADE_EXAMPLES"),
                        help="a folder of photos to offer as examples instead of the bundled renders; a labels.csv "
                             "in it (columns file, side, scratch) lets the page say which ones the models grade "
                             "wrong [PHONEGRADE_EXAMPLES]")
    parser.add_argument("--web", metavar="DIR", default=env("PHONEGRADE_WEB"),
                        help="also serve a site written by `phonegrade web` (grading in the visitor's browser) at "
                             "/web/ [PHONEGRADE_WEB]")
    parser.add_argument("--upload-ttl", type=int, default=int(env("PHONEGRADE_UPLOAD_TTL", "3600")),
                        help="seconds an uploaded file is kept in --upload-dir (0: never deleted)")


def serve(args: argparse.Namespace, prog: str) -> int:
    """Load the models and serve the page until interrupted; `prog` names the command in error messages."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.torch_threads or max(1, (os.cpu_count() or 1) // max(1, args.concurrency)))
    os.environ["GRADIO_TEMP_DIR"] = args.upload_dir  # read by Gradio when the page is built and served
    os.environ["GRADIO_ANALYTICS_ENABLED"] = str(args.analytics)  # read by Gradio's version check and telemetry
    try:
        side = load_model(args.side_model, args.side_revision)
        scratch = load_model(args.scratch_model, args.scratch_revision)
    except ModelLoadError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    for task, model in (("side", side), ("scratch", scratch)):
        if model.classifier.task != task:
            print(f"{prog}: error: --{task}-model {model.model_id} is a {model.classifier.task} model",
                  file=sys.stderr)
            return 2
    store = CorrectionStore(args.corrections_dir)
    try:
        store.ensure()
        store.clean_staging()
    except OSError as err:  # predictions do not need the folder; each correction will say why it fails
        log.warning("corrections folder %s is not usable (%s): corrections cannot be saved until it is",
                    args.corrections_dir, err)
    pusher = None
    if args.corrections_repo:
        bound_hub_requests()  # a Hub that stops answering fails a push (its records stay queued), never hangs it
        pusher = HubPusher(store, args.corrections_repo, every_s=args.push_every,
                           private=not args.public_corrections).start()
    max_bytes = int(args.max_upload_mb * 1024 * 1024)
    grader = Grader(side, scratch, store, max_upload_bytes=max_bytes, ask_margin=args.ask_margin,
                    flag_limit=FlagLimit(args.flag_limit), behind_proxy=args.behind_proxy)
    if args.web and not all((Path(args.web) / name).is_file() for name in ("index.html", "site.json")):
        print(f"{prog}: error: --web {args.web}: not a site written by `phonegrade web`", file=sys.stderr)
        return 2
    try:
        examples = read_examples(args.examples or EXAMPLES_DIR)
    except (OSError, ConfigError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    demo = build_demo(grader, examples, concurrency=args.concurrency, upload_ttl_s=args.upload_ttl or None,
                      analytics=args.analytics,
                      examples_text=examples_note(grader, examples, renders=not args.examples))
    launch(demo, args.host, args.port, max_bytes, pusher=pusher, delete_uploads=bool(args.upload_ttl),
           web_dir=args.web)
    return 0
