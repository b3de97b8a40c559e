"""Load test of the demo: concurrent gradio_client clients sending mixed /predict and /flag requests.

    python benchmarks/load.py                                  # 20 clients × 25 requests, 1 in 5 a flag
    python benchmarks/load.py --side-model runs/side --scratch-model runs/scratch --clients 50
    python benchmarks/load.py --url http://127.0.0.1:7860/ --corrections-dir data/corrections   # a running app
    python benchmarks/load.py --baseline e46dfa6 --output benchmarks/results/load.json   # before / after

Unless --url is given it starts `python app.py` on a free loopback port with its own corrections and upload
folders and no flag limit (every client here shares one address), on the embedded default models if they are
built (`make demo`), else on tiny models it trains first.
Each client is a thread sending its requests one after another over Gradio's HTTP API (upload, call, read the
event stream), or with --client gradio a separate `gradio_client.Client` (its set-up is not timed); the photos
are 160 px `phonegrade synth` renders. Afterwards every acknowledged flag must be stored exactly once in the
corrections folder.
Prints latency percentiles per endpoint and the error count, then one JSON line last. Exit status 1 on any
error, a flag not stored exactly once, or running past --timeout. --output also writes the JSON to a file.
--baseline REF loads app.py of an earlier git revision first (checked out in a temporary worktree, the same
models, photos and clients) and then this checkout's, and reports both and their ratio: a before/after
comparison from one run on one machine.
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


def start_app(side: str, scratch: str, work: Path, app_options: list[str],
              code: Path = ROOT) -> tuple[subprocess.Popen, str, Path]:
    """app.py of `code` (this checkout, or a baseline's) on a free loopback port, with its own corrections and
    upload folders and no flag limit (every client here shares one address)."""
    work.mkdir(parents=True, exist_ok=True)
    corrections, port = work / "corrections", free_port()
    # PYTHONPATH: the phonegrade of `code`, ahead of any installed one.
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "no_proxy": "127.0.0.1,localhost",
           "PYTHONPATH": str(code)}
    process = subprocess.Popen(
        [sys.executable, str(code / "app.py"), "--side-model", side, "--scratch-model", scratch, "--corrections-dir",
         str(corrections), "--upload-dir", str(work / "uploads"), "--port", str(port), "--flag-limit", "0",
         *app_options],
        cwd=code, env=env, stdout=open(work / "app.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
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


def http_sender(url: str, deadline: float):
    """A client of Gradio's plain HTTP API (what `curl` does: upload the file, call the endpoint, read its result
    from the event stream): `send(kind, data) -> result`, `data` the endpoint's inputs after the photo."""
    import httpx

    client = httpx.Client(base_url=url, timeout=max(1.0, deadline - time.time()))

    def send(kind: str, photo: Path, data: list):
        upload = client.post("gradio_api/upload", files={"files": (photo.name, photo.read_bytes(), "image/png")})
        upload.raise_for_status()
        file = {"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}
        call = client.post(f"gradio_api/call/{kind}", json={"data": [file, *data]})
        call.raise_for_status()
        with client.stream("GET", f"gradio_api/call/{kind}/{call.json()['event_id']}") as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event in ("complete", "error"):
                    if event == "error":
                        raise RuntimeError(f"the app answered with an error: {line.removeprefix('data: ')}")
                    return json.loads(line.removeprefix("data: "))[0]
        raise RuntimeError("the event stream ended without a result")

    return send


def gradio_sender(url: str, deadline: float):
    """A gradio_client.Client (its set-up is not timed): `send(kind, photo, data) -> result`."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)

    def send(kind: str, photo: Path, data: list):
        return client.submit(handle_file(str(photo)), *data, api_name=f"/{kind}").result(
            timeout=max(1.0, deadline - time.time()))

    return send


SENDERS = {"http": http_sender, "gradio": gradio_sender}


def run_client(client: str, url: str, photos: list[tuple[Path, str]], index: int, requests: int, flag_every: int,
               deadline: float) -> list[dict]:
    """One client's requests, in order (`client`: a key of SENDERS): {"kind", "seconds", "error", "record_id"}
    each."""
    send = SENDERS[client](url, deadline)
    results = []
    for i in range(requests):
        photo, label = photos[(index * requests + i) % len(photos)]
        kind = "flag" if (index * requests + i) % flag_every == flag_every - 1 else "predict"
        # /flag's inputs after the photo: corrected side, corrected scratch, comment, consent, asked.
        data = [label, "", f"load test {index}/{i}", False, False] if kind == "flag" else []
        start = time.perf_counter()
        result, error = None, ""
        try:
            result = send(kind, photo, data)
        except Exception as err:  # noqa: BLE001 - every failure counts as an error, whatever its type
            error = f"{err.__class__.__name__}: {err}"
        results.append({"kind": kind, "seconds": time.perf_counter() - start, "error": error,
                        "record_id": result["record_id"] if kind == "flag" and result else None})
    return results


def shown(path: str) -> str:
    """A model folder as the results file names it: relative to the checkout when inside it (no machine's paths)."""
    return Path(path).relative_to(ROOT).as_posix() if Path(path).is_relative_to(ROOT) else path


def percentiles(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}


def load(url: str, corrections: Path | None, photos: list, args: argparse.Namespace, deadline: float,
         whole_store: bool) -> dict:
    """Run the clients against one app; its summary. `whole_store`: the app's corrections folder is its own, so
    that every new record must be one of the acknowledged flags."""
    from phonegrade.corrections import CorrectionStore

    before = {r["record_id"] for r in CorrectionStore(corrections).records()} if corrections else set()
    load_start = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
        futures = [pool.submit(run_client, args.client, url, photos, i, args.requests, args.flag_every, deadline)
                   for i in range(args.clients)]
        results = [r for f in futures for r in f.result(timeout=max(1.0, deadline - time.time()))]
    load_s = time.time() - load_start
    errors = [r["error"] for r in results if r["error"]]
    acknowledged = [r["record_id"] for r in results if r["record_id"]]
    stored_once = None
    if corrections:
        counts = Counter(r["record_id"] for r in CorrectionStore(corrections).records())
        new = set(counts) - before
        stored_once = all(counts[i] == 1 for i in acknowledged) and len(set(acknowledged)) == len(acknowledged) \
            and (not whole_store or new == set(acknowledged))
    summary = {
        "requests": len(results),
        "predict": percentiles([r["seconds"] for r in results if r["kind"] == "predict"]),
        "flag": percentiles([r["seconds"] for r in results if r["kind"] == "flag"]),
        "all": percentiles([r["seconds"] for r in results]),
        "errors": len(errors), "first_error": errors[0] if errors else None,
        "flags_acknowledged": len(acknowledged), "flags_stored_once": stored_once,
        "load_s": round(load_s, 1), "requests_per_s": round(len(results) / load_s, 1),
    }
    for kind in ("predict", "flag", "all"):
        figures = summary[kind]
        if figures["n"]:
            print(f"  {kind:<8} n={figures['n']:<4} p50 {figures['p50_ms']:>7.1f} ms   "
                  f"p99 {figures['p99_ms']:>7.1f} ms   max {figures['max_ms']:>7.1f} ms")
    print(f"  errors {len(errors)}" + (f" (first: {errors[0]})" if errors else "")
          + f"; {len(acknowledged)} flags acknowledged, stored exactly once: {stored_once}; "
          f"{summary['requests_per_s']} requests/s", flush=True)
    return summary


def baseline_checkout(ref: str, folder: Path) -> Path:
    """This repository's code at git `ref`, checked out (a detached worktree) in `folder`."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(folder), ref], check=True,
                   capture_output=True, timeout=120)
    return folder


def main(argv: list[str] | None = None) -> int:
    from phonegrade import DEFAULT_MODELS
    from phonegrade.synth import write_synthetic_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--flag-every", type=int, default=5, help="every Nth request is a /flag, the rest /predict")
    parser.add_argument("--side-model", help="default: the embedded default model if built, else a tiny one")
    parser.add_argument("--scratch-model")
    parser.add_argument("--concurrency", type=int, help="the app's --concurrency (default: the app's own)")
    parser.add_argument("--client", choices=tuple(SENDERS), default="http",
                        help="http: Gradio's plain HTTP API, as curl uses it; gradio: each client a "
                             "gradio_client.Client (on a small machine its polling takes as much CPU as the app)")
    parser.add_argument("--url", help="load an app that is already running instead of starting one")
    parser.add_argument("--corrections-dir", help="with --url: its corrections folder, to check the flags")
    parser.add_argument("--baseline", metavar="GIT_REF",
                        help="first load app.py of this git revision of the repository (same models, photos and "
                             "clients), then this checkout's, and report both and their ratios")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.url and args.baseline:
        parser.error("--baseline starts both apps itself: not with --url")
    started = time.time()
    deadline = started + args.timeout

    with tempfile.TemporaryDirectory(prefix="phonegrade-load-") as tmp:
        work = Path(tmp)
        write_synthetic_dataset("side", work / "photos", per_class=5, size=160, seed=7, progress=False)
        photos = [(p, p.parent.name) for p in sorted((work / "photos").glob("*/*/*.png"))]
        if args.url:
            url = args.url if args.url.endswith("/") else args.url + "/"
            corrections = Path(args.corrections_dir) if args.corrections_dir else None
            print(f"{url}:")
            runs = {"served": load(url, corrections, photos, args, deadline, whole_store=False)}
            models = "as served"
        else:
            side, scratch = args.side_model, args.scratch_model
            if not side or not scratch:
                built = all((Path(DEFAULT_MODELS[t]) / "model.safetensors").is_file() for t in DEFAULT_MODELS)
                side, scratch = (DEFAULT_MODELS["side"], DEFAULT_MODELS["scratch"]) if built else tiny_models(work)
            # Resolved: the baseline's app runs in another folder. Recorded relative to the checkout where inside it.
            models = {"side": str(Path(side).resolve()), "scratch": str(Path(scratch).resolve())}
            codes = {"current": ROOT}
            if args.baseline:
                codes = {"baseline": baseline_checkout(args.baseline, work / "baseline-code"), **codes}
            runs = {}
            try:
                for name, code in codes.items():
                    options = ["--concurrency", str(args.concurrency)] if args.concurrency else []
                    process, url, corrections = start_app(models["side"], models["scratch"], work / name, options,
                                                          code)
                    print(f"{name} ({code}):")
                    try:
                        runs[name] = load(url, corrections, photos, args, deadline, whole_store=True)
                    finally:
                        process.terminate()
                        process.wait(timeout=30)
            finally:
                if args.baseline:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                    str(work / "baseline-code")], capture_output=True, timeout=120)
    summary = {"clients": args.clients, "requests_per_client": args.requests, "flag_every": args.flag_every,
               "client": args.client,
               "concurrency": args.concurrency, "baseline": args.baseline,
               "models": models if isinstance(models, str) else {task: shown(path) for task, path in models.items()},
               # One app: its figures at the top; with --baseline, each app's under its name.
               **(runs if len(runs) > 1 else next(iter(runs.values()))),
               "wall_s": round(time.time() - started, 1)}
    if "baseline" in runs:
        before, after = runs["baseline"], runs["current"]
        summary["ratio"] = {"requests_per_s": round(after["requests_per_s"] / before["requests_per_s"], 2),
                            "p99_all": round(after["all"]["p99_ms"] / before["all"]["p99_ms"], 2)}
        print(f"current / baseline: ×{summary['ratio']['requests_per_s']} requests/s, "
              f"×{summary['ratio']['p99_all']} p99")
    print(json.dumps(summary))
    if args.output:
        args.output.write_text(json.dumps(summary, indent=1) + "\n")
    failed = any(r["errors"] or r["flags_stored_once"] is False for r in runs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
