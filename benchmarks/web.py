"""The in-browser page (`phonegrade web`) in headless chromium on this CPU: how much it downloads, how long from
opening it to the first grade, and how long each photo takes.

    .venv/bin/python benchmarks/web.py --ort-from build/ort-web --output benchmarks/results/web.json

Builds the site with the embedded default models and onnxruntime-web from --ort-from (`make web-deps` installs it
there), serves it from a loopback HTTP server, opens it in a fresh browser, and grades --photos photos one after
another (1600 px synthetic JPEGs of all three side classes: fronts run both models). "First grade": from opening
the page to the first photo's grade shown (loading onnxruntime-web and both models included). Targets: at most
3 s to the first grade and 300 ms per photo (p50). The last line printed is one JSON object, also written to
--output.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

from common import load_average, percentiles_ms, write_photos  # puts phonegrade on sys.path

from phonegrade import DEFAULT_MODELS, PhoneGradeClassifier
from phonegrade.web import build_site

TARGET_FIRST_S, TARGET_PHOTO_MS = 3.0, 300


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ort-from", required=True, help="a local npm install of onnxruntime-web")
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--photo-size", type=int, default=1600)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        site = build_site(Path(tmp) / "site", PhoneGradeClassifier.from_pretrained(DEFAULT_MODELS["side"]),
                          PhoneGradeClassifier.from_pretrained(DEFAULT_MODELS["scratch"]), ort_from=args.ort_from)
        sizes = {p.relative_to(site).as_posix(): p.stat().st_size for p in site.rglob("*") if p.is_file()}
        # What a visitor downloads: the page, its scripts, both models and onnxruntime-web's WebAssembly build.
        downloaded = sum(sizes.values())
        photos = write_photos(Path(tmp) / "photos", args.photos, args.photo_size)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 functools.partial(QuietHandler, directory=str(site)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                        headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(url)
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
            ready_s = time.perf_counter() - started
            seconds = []
            for photo in photos:
                page.evaluate("window.phonegradeResult = undefined")
                begun = time.perf_counter()
                page.set_input_files("#photo", str(photo))
                page.wait_for_function("window.phonegradeResult !== undefined", timeout=60_000)
                seconds.append(time.perf_counter() - begun)
                if len(seconds) == 1:
                    first_s = time.perf_counter() - started
            browser.close()
        server.shutdown()
    per_photo = percentiles_ms(seconds[1:])  # the first photo also warms up the models
    summary = {"benchmark": "web", "settings": {"photos": args.photos, "photo_size": args.photo_size},
               "load_average_before": load_before, "download_mb": round(downloaded / 1e6, 1),
               "files_mb": {name: round(size / 1e6, 2) for name, size in sorted(sizes.items())},
               "ready_s": round(ready_s, 2), "first_grade_s": round(first_s, 2), "first_photo_ms":
               round(seconds[0] * 1000, 1), "per_photo": per_photo,
               "targets": {f"first_grade_le_{TARGET_FIRST_S:g}s": first_s <= TARGET_FIRST_S,
                           f"per_photo_p50_le_{TARGET_PHOTO_MS}ms": per_photo["p50_ms"] <= TARGET_PHOTO_MS}}
    print(f"download {summary['download_mb']} MB; page ready in {summary['ready_s']} s, first grade after "
          f"{summary['first_grade_s']} s; per photo p50 {per_photo['p50_ms']} ms, p95 {per_photo['p95_ms']} ms")
    if args.output:
        args.output.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
