"""A static site that grades photos in the visitor's browser (`phonegrade web`): one HTML page, plain JavaScript
modules (phonegrade/site/), the two models as ONNX files and their preprocessing and labels, run by
onnxruntime-web. No server sees the photos; any static host serves it.

onnxruntime-web comes from a pinned CDN URL with a subresource-integrity hash, or, with `ort_from`, is copied
from a local npm install (`npm install onnxruntime-web@ORT_VERSION`) for fully offline hosting.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib.resources import files
from pathlib import Path

import torch

from . import quality
from .classifier import PhoneGradeClassifier
from .confidence import DEFAULT_ASK_MARGIN
from .errors import ConfigError
from .exporting import INPUT_NAME, OUTPUT_NAME, export_onnx

ORT_VERSION = "1.31.1"
ORT_SCRIPT = "ort.wasm.min.js"  # the WebAssembly build: sets the global `ort`
ORT_FILES = (ORT_SCRIPT, "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_VERSION}/dist/"
ORT_INTEGRITY = "sha384-tNxIwEqSlcdvKtUte98AsccPbDKM958LBXB/+3BLS42TTihXHKTWgdqPqXI/lot8"  # of ORT_SCRIPT
SITE_FILES = ("index.html", "grade.js", "preprocess.js")


def ort_dist(folder: str | os.PathLike) -> Path:
    """The `dist` folder of onnxruntime-web under `folder`: a project with node_modules, the package, or its
    dist folder itself."""
    folder = Path(folder)
    for candidate in (folder, folder / "dist", folder / "node_modules" / "onnxruntime-web" / "dist"):
        if all((candidate / name).is_file() for name in ORT_FILES):
            return candidate
    raise ConfigError(f"--ort-from {folder}: no onnxruntime-web files ({', '.join(ORT_FILES)}) there; run "
                      f"`npm install onnxruntime-web@{ORT_VERSION}` in it first")


def model_entry(classifier: PhoneGradeClassifier, file: str) -> dict:
    return {"file": file, "task": classifier.task, "labels": list(classifier.labels), "input": INPUT_NAME,
            "output": OUTPUT_NAME, "preprocessing": classifier.preprocessing.to_config()}


def build_site(out: str | os.PathLike, side: PhoneGradeClassifier, scratch: PhoneGradeClassifier,
               ort_from: str | os.PathLike | None = None, flag_url: str | None = None,
               ask_margin: float = DEFAULT_ASK_MARGIN) -> Path:
    """Write the site into `out`: the page, its scripts, side.onnx and scratch.onnx (fp32), site.json (labels,
    preprocessing, the ask margin, the demo to send corrections to) and, with `ort_from`, onnxruntime-web."""
    for task, model in (("side", side), ("scratch", scratch)):
        if model.task != task:
            raise ConfigError(f"the {task} model is a {model.task} model")
        if model.preprocessing.crop_pct < 1.0:
            raise ConfigError(f"the {task} model crops the photo's centre (crop_pct {model.preprocessing.crop_pct});"
                              f" the page resizes the whole photo, as crop_pct 1 models do")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for task, model in (("side", side), ("scratch", scratch)):
        example = torch.zeros(2, 3, model.image_size, model.image_size)
        export_onnx(model, out / f"{task}.onnx", example)
    site = {"models": {"side": model_entry(side, "side.onnx"), "scratch": model_entry(scratch, "scratch.onnx")},
            "ask_margin": ask_margin, "flag_url": flag_url, "ort_version": ORT_VERSION,
            # The capture-quality checks' constants, so that the page warns exactly where the Gradio page does.
            "quality": {"analysis_side": quality.ANALYSIS_SIDE, "blown_out_level": quality.BLOWN_OUT_LEVEL,
                        "min_sharpness": quality.MIN_SHARPNESS, "max_glare": quality.MAX_GLARE,
                        "max_darkness": quality.MAX_DARKNESS, "black_darkness": quality.BLACK_DARKNESS,
                        "min_short_side": quality.MIN_SHORT_SIDE, "min_gradable_side": quality.MIN_GRADABLE_SIDE}}
    if ort_from is not None:
        dist = ort_dist(ort_from)
        (out / "ort").mkdir(exist_ok=True)
        for name in ORT_FILES:
            shutil.copyfile(dist / name, out / "ort" / name)
        script, site["ort_wasm_path"] = f'<script src="ort/{ORT_SCRIPT}"></script>', "ort/"
    else:
        script = (f'<script src="{ORT_CDN}{ORT_SCRIPT}" integrity="{ORT_INTEGRITY}" '
                  f'crossorigin="anonymous"></script>')
        site["ort_wasm_path"] = ORT_CDN
    page = files("phonegrade.site")
    for name in SITE_FILES:
        text = (page / name).read_text(encoding="utf-8")
        (out / name).write_text(text.replace("<!--ORT-->", script) if name == "index.html" else text,
                                encoding="utf-8")
    (out / "site.json").write_text(json.dumps(site, indent=1) + "\n", encoding="utf-8")
    return out
