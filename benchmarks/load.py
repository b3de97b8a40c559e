"""Load test of the demo: concurrent gradio_client clients sending mixed /predict and /flag requests.

    python benchmarks/load.py                                  # 20 clients × 25 requests, 1 in 5 a flag
    python benchmarks/load.py --side-model runs/side --scratch-model runs/scratch --clients 50
    python benchmarks/load.py --url http://127.0.0.1:7860/ --corrections-dir data/corrections   # a running app

Unless --url is given it starts `python app.py` on a free loopback port with its own corrections and upload
folders and no flag limit (every client here shares one address), on the embedded default models if they are
built (`make demo`), else on tiny models it trains first.
Each client is a separate `gradio_client.Client` (its set-up is not timed); the photos are `phonegrade synth`
renders. Afterwards every acknowledged flag must be stored exactly once in the corrections folder.
Prints latency percentiles per endpoint and the error count, then one JSON line last. Exit status 1 on any
error, a flag not stored exactly once, or running past --timeout. --output also writes the JSON to a file.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_models(work: Path) -> tuple[str, str]:
    """Small WearNet models, one epoch on synthetic renders: enough to serve, not to grade well."""
    from phonegrade.synth import write_synthetic_dataset

    paths = []
    for task, per_class in (("side", 12), ("scratch", 6)):
        data, out = work / f"{task}-data", work / f"{task}-model"
        write_synthetic_dataset(task, data, per_class=per_class, size=48, seed=1, progress=False)
        subprocess.run([sys.executable, str(ROOT / "phonegrade" / "train.py"), "--no-progress", "--task", task,
                        "--arch", "wearnet", "--weights", "none", "--data", str(data), "--output-dir", str(out),
                        "--epochs", "1", "--image-size", "48", "--batch-size", "8", "--workers", "0"],
                       check=True, capture_output=True, timeout=600)
        paths.append(str(out))
    return paths[0], paths[1]


def start_app(side: str, scratch: str, work: Path, concurrency: int) -> tuple[subprocess.Popen, str, Path]:
    corrections, port = work / "corrections", free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "no_proxy": "127.0.0.1,localhost"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--side-model", side, "--scratch-model", scratch, "--corrections-dir",
         str(corrections), "--upload-dir", str(work / "uploads"), "--port", str(port), "--concurrency",
         str(concurrency), "--flag-limit", "0"],
        cwd=ROOT, env=env, stdout=open(work / "app.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited early:\n{(work / 'app.log').read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url, corrections
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"app.py did not come up in 180 s:\n{(work / 'app.log').read_text()}")


def run_client(url: str, photos: list[tuple[Path, str]], index: int, requests: int, flag_every: int,
               deadline: float) -> list[dict]:
    """One client's requests, in order: {"kind", "seconds", "error", "record_id"} each."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    results = []
    for i in range(requests):
        photo, label = photos[(index * requests + i) % len(photos)]
        kind = "flag" if (index * requests + i) % flag_every == flag_every - 1 else "predict"
        args = (handle_file(str(photo)), label, "", f"load test {index}/{i}") if kind == "flag" \
            else (handle_file(str(photo)),)
        start = time.perf_counter()
        result, error = None, ""
        try:
            result = client.submit(*args, api_name=f"/{kind}").result(timeout=max(1.0, deadline - time.time()))
        except Exception as err:  # noqa: BLE001 - every failure counts as an error, whatever its type
            error = f"{err.__class__.__name__}: {err}"
        results.append({"kind": kind, "seconds": time.perf_counter() - start, "error": error,
                        "record_id": result["record_id"] if kind == "flag" and result else None})
    return results


def percentiles(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}


def main(argv: list[str] | None = None) -> int:
    from phonegrade import DEFAULT_MODELS
    from phonegrade.corrections import CorrectionStore
    from phonegrade.synth import write_synthetic_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--flag-every", type=int, default=5, help="every Nth request is a /flag, the rest /predict")
    parser.add_argument("--side-model", help="default: the embedded default model if built, else a tiny one")
    parser.add_argument("--scratch-model")
    parser.add_argument("--concurrency", type=int, default=4, help="the app's --concurrency")
    parser.add_argument("--url", help="load an app that is already running instead of starting one")
    parser.add_argument("--corrections-dir", help="with --url: its corrections folder, to check the flags")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    started = time.time()
    deadline = started + args.timeout

    with tempfile.TemporaryDirectory(prefix="phonegrade-load-") as tmp:
        work = Path(tmp)
        write_synthetic_dataset("side", work / "photos", per_class=5, size=160, seed=7, progress=False)
        photos = [(p, p.parent.name) for p in sorted((work / "photos").glob("*/*/*.png"))]
        process = None
        if args.url:
            url = args.url if args.url.endswith("/") else args.url + "/"
            corrections = Path(args.corrections_dir) if args.corrections_dir else None
            models = "as served"
        else:
            side, scratch = args.side_model, args.scratch_model
            if not side or not scratch:
                built = all((Path(DEFAULT_MODELS[t]) / "model.safetensors").is_file() for t in DEFAULT_MODELS)
                side, scratch = (DEFAULT_MODELS["side"], DEFAULT_MODELS["scratch"]) if built else tiny_models(work)
            models = {"side": side, "scratch": scratch}
            process, url, corrections = start_app(side, scratch, work, args.concurrency)
        before = {r["record_id"] for r in CorrectionStore(corrections).records()} if corrections else set()
        try:
            load_start = time.time()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                futures = [pool.submit(run_client, url, photos, i, args.requests, args.flag_every, deadline)
                           for i in range(args.clients)]
                results = [r for f in futures for r in f.result(timeout=max(1.0, deadline - time.time()))]
            load_s = time.time() - load_start
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)

        errors = [r["error"] for r in results if r["error"]]
        acknowledged = [r["record_id"] for r in results if r["record_id"]]
        stored_once = None
        if corrections:
            counts = Counter(r["record_id"] for r in CorrectionStore(corrections).records())
            new = set(counts) - before
            stored_once = all(counts[i] == 1 for i in acknowledged) and len(set(acknowledged)) == len(acknowledged) \
                and (args.url is not None or new == set(acknowledged))
        summary = {
            "clients": args.clients, "requests_per_client": args.requests, "requests": len(results),
            "concurrency": args.concurrency if not args.url else None, "models": models,
            "predict": percentiles([r["seconds"] for r in results if r["kind"] == "predict"]),
            "flag": percentiles([r["seconds"] for r in results if r["kind"] == "flag"]),
            "all": percentiles([r["seconds"] for r in results]),
            "errors": len(errors), "flags_acknowledged": len(acknowledged), "flags_stored_once": stored_once,
            "load_s": round(load_s, 1), "requests_per_s": round(len(results) / load_s, 1),
            "wall_s": round(time.time() - started, 1),
        }
    for kind in ("predict", "flag", "all"):
        s = summary[kind]
        if s["n"]:
            print(f"{kind:<8} n={s['n']:<4} p50 {s['p50_ms']:>7.1f} ms   p99 {s['p99_ms']:>7.1f} ms   "
                  f"max {s['max_ms']:>7.1f} ms")
    print(f"errors {len(errors)}" + (f" (first: {errors[0]})" if errors else "")
          + f"; {len(acknowledged)} flags acknowledged, stored exactly once: {stored_once}; "
          f"{summary['requests_per_s']} requests/s")
    print(json.dumps(summary))
    if args.output:
        args.output.write_text(json.dumps(summary, indent=1) + "\n")
    return 0 if not errors and stored_once is not False else 1


if __name__ == "__main__":
    sys.exit(main())
