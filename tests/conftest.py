import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Tests never reach a network: Hub calls go to loopback servers the tests start, torchvision downloads
# hit a closed loopback port and fail at once.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def side_data(tmp_path_factory) -> Path:
    """A small synthetic side dataset: train/ and val/ folders, 12 images per class at 48 px."""
    from phonegrade.synth import write_synthetic_dataset

    out = tmp_path_factory.mktemp("side-data")
    write_synthetic_dataset("side", out, per_class=12, size=48, seed=1, progress=False)
    return out


@pytest.fixture(scope="session")
def trained_side_model(side_data, tmp_path_factory) -> Path:
    """A wearnet side model trained for two epochs through `accelerate launch phonegrade/train.py`."""
    out = tmp_path_factory.mktemp("side-model")
    # At the default lr, two epochs of three steps leave every image at about 1/3 per class (spread 2e-3).
    run_train(["--task", "side", "--arch", "wearnet", "--data", str(side_data), "--output-dir", str(out),
               "--epochs", "2", "--lr", "1e-2", "--image-size", "48", "--batch-size", "8", "--workers", "0"],
              launcher="accelerate")
    assert_input_sensitive(out, sorted(side_data.glob("*/*/*.png")))
    return out


def assert_input_sensitive(model, images, min_spread: float = 0.01) -> None:
    """Comparisons of a model with a copy of it (exported, folded, reloaded, served) prove little when it gives
    every image about the same probabilities: fixtures that feed them check that some class probability moves by
    `min_spread` (a hundred times the 1e-4 those comparisons allow) across `images`."""
    from phonegrade import PhoneGradeClassifier

    classifier = model if isinstance(model, PhoneGradeClassifier) else PhoneGradeClassifier.from_pretrained(model)
    probabilities = classifier.predict_proba(images)
    spread = (probabilities - probabilities[0]).abs().max().item()
    assert spread >= min_spread, f"{model}: about the same probabilities for every image (spread {spread:.1g})"


def input_sensitive(classifier):
    """BatchNorm as after training (scales and shifts away from 1 and 0, statistics of real activations): with
    the initial ones, activations fade layer by layer until every image looks alike to a deep random net."""
    import torch
    from torch import nn

    size = classifier.image_size
    pixels = torch.randn(8, 3, size, size) * 2 * torch.rand(8, 1, 1, 1) + torch.randn(8, 3, 1, 1)
    for module in classifier.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the pass below
            with torch.no_grad():
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    with torch.no_grad():
        classifier.train()(pixels)
    return classifier.eval()


def run_train(args: list[str], launcher: str = "python", processes: int = 1, check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if launcher == "accelerate":
        # `--cpu` always starts a single process; `--multi_gpu` starts several (torchrun), which pool over the
        # CPU when there is no GPU.
        devices = ["--cpu"] if processes == 1 else ["--multi_gpu", "--main_process_port", "0"]
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *devices]
    else:
        cmd = [sys.executable]
    env = {**os.environ, "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
           **({"OMP_NUM_THREADS": "1"} if processes > 1 else {}), **(env or {})}
    result = subprocess.run([*cmd, str(ROOT / "phonegrade" / "train.py"), "--no-progress", *args], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"training failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def trained_scratch_model(tmp_path_factory) -> Path:
    from phonegrade.synth import write_synthetic_dataset

    data = tmp_path_factory.mktemp("scratch-data")
    write_synthetic_dataset("scratch", data, per_class=6, size=48, seed=2, progress=False)
    out = tmp_path_factory.mktemp("scratch-model")
    run_train(["--task", "scratch", "--arch", "wearnet", "--data", str(data), "--output-dir", str(out),
               "--epochs", "1", "--lr", "1e-2", "--image-size", "48", "--batch-size", "6", "--workers", "0"])
    assert_input_sensitive(out, sorted(data.glob("*/*/*.png")))
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import time
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{process.stdout.read() if process.stdout else ''}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not come up in {timeout}s")


@pytest.fixture(scope="session")
def running_app(trained_side_model, trained_scratch_model, tmp_path_factory):
    """`python app.py` on a free loopback port with the tiny test models and a fresh corrections folder."""
    corrections = tmp_path_factory.mktemp("corrections")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "no_proxy": "127.0.0.1,localhost"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--side-model", str(trained_side_model), "--scratch-model",
         str(trained_scratch_model), "--corrections-dir", str(corrections), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, process)
        yield {"url": url, "corrections": corrections, "process": process}
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def serve_app(*args: str, env: dict[str, str] | None = None):
    """`python app.py ARGS` on a free loopback port; yields {"url", "process"} and stops it afterwards. `env` adds to
    the environment (a None value removes the variable)."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "no_proxy": "127.0.0.1,localhost", **(env or {})}
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args], cwd=ROOT,
                               env={k: v for k, v in env.items() if v is not None},  # None: unset
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, process)
        yield {"url": url, "process": process}
    finally:
        process.terminate()
        process.wait(timeout=30)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE_BROWSER = "PHONEGRADE_REQUIRE_BROWSER"  # set by .ci/run


@pytest.fixture(scope="session")  # session: checked before the session-scoped apps are started
def chromium() -> str:
    """Debian's chromium. Without it the browser tests are skipped, or fail where PHONEGRADE_REQUIRE_BROWSER=1 (CI):
    a skip there would pass unnoticed."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    reason = "needs Debian's chromium (make test installs it when run as root)"
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{reason}; {REQUIRE_BROWSER}=1 says this test must run", pytrace=False)
    pytest.skip(reason)
