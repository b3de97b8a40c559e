"""phonegrade demo: `python app.py` serves the Gradio page on http://127.0.0.1:7860.

With no arguments it runs offline on the embedded default models (phonegrade.DEFAULT_MODELS). Every option
can also be set with an environment variable (PHONEGRADE_SIDE_MODEL, PHONEGRADE_SCRATCH_MODEL,
PHONEGRADE_CORRECTIONS_DIR, PHONEGRADE_CORRECTIONS_REPO, ...). Hub access uses HF_TOKEN / `hf auth login`
and honours HF_ENDPOINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from phonegrade import DEFAULT_MODELS

    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--side-model", default=env("PHONEGRADE_SIDE_MODEL", DEFAULT_MODELS["side"]),
                        help="side model: local folder or Hub model id [PHONEGRADE_SIDE_MODEL]")
    parser.add_argument("--side-revision", default=env("PHONEGRADE_SIDE_REVISION"), help="Hub revision")
    parser.add_argument("--scratch-model", default=env("PHONEGRADE_SCRATCH_MODEL", DEFAULT_MODELS["scratch"]),
                        help="scratch model: local folder or Hub model id [PHONEGRADE_SCRATCH_MODEL]")
    parser.add_argument("--scratch-revision", default=env("PHONEGRADE_SCRATCH_REVISION"), help="Hub revision")
    parser.add_argument("--corrections-dir",
                        default=env("PHONEGRADE_CORRECTIONS_DIR", str(ROOT / "data" / "corrections")),
                        help="where flagged corrections are stored [PHONEGRADE_CORRECTIONS_DIR]")
    parser.add_argument("--corrections-repo", default=env("PHONEGRADE_CORRECTIONS_REPO"),
                        help="Hub dataset repo the corrections are pushed to in the background "
                             "[PHONEGRADE_CORRECTIONS_REPO]")
    parser.add_argument("--push-every", type=float, default=float(env("PHONEGRADE_PUSH_EVERY", "300")),
                        help="seconds between background pushes of new corrections")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--max-upload-mb", type=float, default=float(env("PHONEGRADE_MAX_UPLOAD_MB", "20")),
                        help="largest accepted upload")
    parser.add_argument("--concurrency", type=int, default=int(env("PHONEGRADE_CONCURRENCY", "4")),
                        help="requests processed at once (the rest wait in Gradio's queue)")
    parser.add_argument("--upload-dir",
                        default=env("GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / "phonegrade-uploads")),
                        help="Gradio's cache of uploaded files [GRADIO_TEMP_DIR]")
    parser.add_argument("--analytics", action="store_true", default=env("PHONEGRADE_ANALYTICS") == "1",
                        help="send Gradio's usage analytics to gradio.app (off by default: the demo makes no "
                             "outside connection unless a Hub repo is given) [PHONEGRADE_ANALYTICS=1]")
    parser.add_argument("--upload-ttl", type=int, default=int(env("PHONEGRADE_UPLOAD_TTL", "3600")),
                        help="seconds an uploaded file is kept in --upload-dir (0: never deleted)")
    return parser.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from phonegrade import EXAMPLES_DIR
    from phonegrade.corrections import CorrectionStore, HubPusher, bound_hub_requests
    from phonegrade.demo import Grader, build_demo, load_model
    from phonegrade.errors import ModelLoadError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    os.environ["GRADIO_TEMP_DIR"] = args.upload_dir  # read by Gradio when the page is built and served
    os.environ["GRADIO_ANALYTICS_ENABLED"] = str(args.analytics)  # read by Gradio's version check and telemetry
    try:
        side = load_model(args.side_model, args.side_revision)
        scratch = load_model(args.scratch_model, args.scratch_revision)
    except ModelLoadError as err:
        print(f"app.py: error: {err}", file=sys.stderr)
        return 2
    for task, model in (("side", side), ("scratch", scratch)):
        if model.classifier.task != task:
            print(f"app.py: error: --{task}-model {model.model_id} is a {model.classifier.task} model",
                  file=sys.stderr)
            return 2
    store = CorrectionStore(args.corrections_dir)
    try:
        store.ensure()
        store.clean_staging()
    except OSError as err:  # predictions do not need the folder; each correction will say why it fails
        logging.getLogger("phonegrade").warning("corrections folder %s is not usable (%s): corrections cannot be "
                                                "saved until it is", args.corrections_dir, err)
    pusher = None
    if args.corrections_repo:
        bound_hub_requests()  # a Hub that stops answering fails a push (its records stay queued), never hangs it
        pusher = HubPusher(store, args.corrections_repo, every_s=args.push_every).start()
    max_bytes = int(args.max_upload_mb * 1024 * 1024)
    grader = Grader(side, scratch, store, max_upload_bytes=max_bytes)
    examples = sorted(str(p) for p in Path(EXAMPLES_DIR).glob("*.png"))
    demo = build_demo(grader, examples, concurrency=args.concurrency, upload_ttl_s=args.upload_ttl or None,
                      analytics=args.analytics)
    # SIGTERM (docker stop, systemd) closes the app like Ctrl-C does: Gradio deletes the uploads it holds, and the
    # corrections pusher makes its last push (for at most corrections.FINAL_PUSH_BUDGET_S).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        # show_error=False: only gr.Error messages (clear, ours) reach the client, never other exceptions' text.
        demo.launch(server_name=args.host, server_port=args.port, max_file_size=max_bytes, show_error=False)
    finally:
        if pusher:
            pusher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
