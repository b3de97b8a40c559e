"""`phonegrade export`: a model as ONNX (for ONNX Runtime) or TorchScript, fp32 or int8, checked against the original.

    phonegrade export --model runs/side --format onnx --int8 --data my-photos/

int8 is static quantisation of the convolutional trunk: weights per output channel, activations with ranges
calibrated on images; the classification head stays fp32. For ONNX that is ONNX Runtime's QDQ quantiser (which
also keeps the first convolution fp32); for TorchScript, PyTorch's FX graph-mode quantisation (oneDNN backend:
set `torch.backends.quantized.engine = "onednn"` to run such a file outside phonegrade).
After writing the file the export is run on check images next to the original model, and the top-1 agreement
and the largest difference in any class probability are printed (and the accuracy of both, as the images are
labelled). The check images are the validation split of --data, or synthetic renders when there is no --data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
INPUT_NAME, OUTPUT_NAME = "pixels", "logits"
# What an exported file carries about itself, so that it can be used without the model folder.
CONFIG_KEYS = ("task", "arch", "labels", "image_size", "interpolation", "crop_pct", "mean", "std")
REQUIRED_KEYS = ("task", "arch", "labels", "image_size", "mean", "std")  # files of phonegrade 0.1 lack the others
# FP32_ENDS: int8 covers the convolutional trunk, where the time goes. The head's small Linear / BatchNorm1d /
# PReLU layers cost almost nothing, and quantised they cost 15 points of accuracy on a synthetic set (measured);
# ONNX Runtime also keeps the first convolution, which sees the raw normalised pixels, in fp32 (that brought a
# MobileNetV2's int8 accuracy from 1 point below fp32 to equal). PyTorch's FX quantiser gained nothing from it.
TRUNK_OPS = ["Conv", "Relu", "Clip", "MaxPool", "AveragePool"]


def exported_keys(classifier) -> dict:
    """What an exported file records of its model: task, arch, labels and preprocessing."""
    return classifier.model_inputs()


def default_output(model: str, fmt: str, int8: bool) -> Path:
    """Next to the weights for a local model folder; in the current folder for a Hub model."""
    folder = Path(model) if Path(model).is_dir() else Path(".")
    return folder / f"model{'.int8' if int8 else ''}{SUFFIXES[fmt]}"


# ---------------------------------------------------------------- check and calibration images

def labelled_images(classifier, data: str | None, split: str, count: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(pixels, labels, description): at most `count` images of `split` ("train" or "val") of `data`, or
    `count` synthetic renders of the model's task (a different set per split) when there is no data."""
    from .data import PhotoDataset, model_validation_split

    if data is None:
        from .synth import render

        rng = np.random.default_rng(["train", "val"].index(split))
        labels = [i % len(classifier.labels) for i in range(count)]
        pixels = [classifier.transform(render(classifier.task, classifier.labels[i], classifier.image_size, rng))
                  for i in labels]
        return torch.stack(pixels), torch.tensor(labels), f"{count} synthetic renders (phonegrade synth)"
    splits = model_validation_split(classifier.config, data)
    samples = splits.train if split == "train" else splits.val
    chosen = samples[::max(1, -(-len(samples) // count))]  # an even stride keeps the split's label mix
    pixels, labels = zip(*PhotoDataset(chosen, classifier.transform, classifier.image_size), strict=True)
    return torch.stack(pixels), torch.tensor(labels), f"{len(chosen)} {split} images of {data}"


# ---------------------------------------------------------------- writing

def export_onnx(classifier, path: Path, example: torch.Tensor) -> None:
    """fp32 ONNX with a dynamic batch axis; labels and preprocessing go into the file's metadata."""
    import onnx

    torch.onnx.export(classifier.net.eval(), (example,), str(path), input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME], dynamic_shapes=({0: torch.export.Dim("batch")},),
                      dynamo=True, verbose=False, external_data=False)  # one self-contained file
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {key: json.dumps(value) for key, value in exported_keys(classifier).items()})
    onnx.save(model, str(path))


def quantize_onnx(fp32_path: Path, int8_path: Path, calibration: torch.Tensor, batch_size: int = 8) -> None:
    """Static int8 (QDQ) of the convolutional trunk: int8 weights per output channel, uint8 activations with
    calibrated ranges. The first convolution and the classification head stay fp32 (`FP32_ENDS`)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration.split(batch_size))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch.contiguous().numpy()}

    with tempfile.TemporaryDirectory() as tmp:
        # Shape inference and graph clean-up first, as ONNX Runtime's quantiser asks.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        first_conv = next(node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv")
        quantize_static(str(prepared), str(int8_path), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=TRUNK_OPS, nodes_to_exclude=[first_conv])


def int8_engine() -> str:
    """PyTorch's quantised-kernel library for TorchScript int8. oneDNN uses the full 8-bit activation range (the
    default x86 backend keeps 7 bits, to stay clear of an overflow in older CPUs' int8 instructions): measured on a
    synthetic-trained MobileNetV2, top-1 agreement with fp32 rose from 93 % to 96.5 %."""
    return "onednn" if "onednn" in torch.backends.quantized.supported_engines else torch.backends.quantized.engine


@contextlib.contextmanager
def quantized_engine(engine: str | None):
    """Run quantised kernels with `engine` (an int8 TorchScript file's packed weights are for one engine)."""
    previous = torch.backends.quantized.engine
    if engine is not None and engine != previous:
        torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        if torch.backends.quantized.engine != previous:
            torch.backends.quantized.engine = previous


def export_torchscript(classifier, path: Path, example: torch.Tensor, calibration: torch.Tensor | None) -> None:
    """Traced and frozen TorchScript; with `calibration`, int8 through FX graph-mode quantisation first. An int8
    file records its engine in its config; `load_exported` runs it with that engine."""
    net = classifier.net.eval()
    config = exported_keys(classifier)
    engine = int8_engine() if calibration is not None else None
    with torch.no_grad(), quantized_engine(engine):
        if calibration is not None:
            from torch.ao.quantization import get_default_qconfig_mapping
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

            with warnings.catch_warnings():
                # torch.ao.quantization announces its move to torchao; it is still the way to int8 TorchScript.
                warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
                warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")
                mapping = get_default_qconfig_mapping(engine).set_module_name("head", None)  # FP32_ENDS
                prepared = prepare_fx(net, mapping, (example,))
                for batch in calibration.split(8):
                    prepared(batch)
                net = convert_fx(prepared)
            config["quantized_engine"] = engine
        torch.jit.save(torch.jit.freeze(torch.jit.trace(net, example).eval()), str(path),
                       _extra_files={"config.json": json.dumps(config)})


def load_exported(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """pixels (N×3×H×W, normalised) → logits, for an exported .onnx or TorchScript file."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # PyTorch's thread budget (OMP_NUM_THREADS; 1 per process under torchrun), not one thread per core each.
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda pixels: torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: pixels.contiguous().numpy()})[0])
    engine = exported_config(path).get("quantized_engine")
    with quantized_engine(engine):
        module = torch.jit.load(str(path)).eval()

    def forward(pixels: torch.Tensor) -> torch.Tensor:
        with quantized_engine(engine):
            return module(pixels)

    return forward


def exported_config(path: str | Path) -> dict:
    """The task, arch, labels and preprocessing stored in an exported file."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        metadata = onnx.load(str(path), load_external_data=False).metadata_props
        return {p.key: json.loads(p.value) for p in metadata if p.key in CONFIG_KEYS}
    # Read from the TorchScript archive (a zip) without loading the model: an int8 file must be loaded with the
    # engine its config names.
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/extra/config.json")), None)
            return json.loads(archive.read(name)) if name else {}
    except (zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a TorchScript file written by `phonegrade export` ({err})") from err


class ExportedClassifier:
    """An exported file with what `phonegrade predict` needs: labels, preprocessing, pixels → logits (CPU)."""

    device = torch.device("cpu")

    def __init__(self, path: str | Path):
        from .data import Preprocessing, eval_transform

        self.config = exported_config(path)
        if not set(REQUIRED_KEYS) <= set(self.config):
            raise ValueError(f"{path}: not a file written by `phonegrade export` (it lacks labels and preprocessing)")
        self.labels, self.image_size = self.config["labels"], self.config["image_size"]
        self.preprocessing = Preprocessing.from_config(self.config)
        self.transform = eval_transform(self.preprocessing)
        self.forward = load_exported(path)

    def eval(self) -> ExportedClassifier:
        return self

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward(pixels)


def is_exported_file(model: str) -> bool:
    return Path(model).is_file() and Path(model).suffix in (".onnx", ".pt")


# ---------------------------------------------------------------- checking

@torch.inference_mode()
def compare(original: Callable, exported: Callable, pixels: torch.Tensor, labels: torch.Tensor,
            batch_size: int = 16) -> dict:
    """Top-1 agreement, the largest absolute difference in any class probability, and both accuracies."""
    def probabilities(model):
        return torch.cat([torch.softmax(model(batch).float(), dim=1) for batch in pixels.split(batch_size)])

    ours, theirs = probabilities(original), probabilities(exported)
    return {
        "images": len(labels),
        "top1_agreement": (ours.argmax(1) == theirs.argmax(1)).float().mean().item(),
        "max_probability_difference": (ours - theirs).abs().max().item(),
        "accuracy_original": (ours.argmax(1) == labels).float().mean().item(),
        "accuracy_exported": (theirs.argmax(1) == labels).float().mean().item(),
    }


def export(classifier, fmt: str, int8: bool, output: Path, calibration: torch.Tensor) -> Path:
    """Write `classifier` to `output` in `fmt`; int8 ranges come from the `calibration` pixels."""
    output.parent.mkdir(parents=True, exist_ok=True)
    example = calibration[:2].contiguous()
    if fmt == "torchscript":
        export_torchscript(classifier, output, example, calibration if int8 else None)
    elif int8:
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "model.onnx"
            export_onnx(classifier, fp32, example)
            quantize_onnx(fp32, output, calibration)
    else:
        export_onnx(classifier, output, example)
    return output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or Hub model id")
    parser.add_argument("--format", choices=FORMATS, required=True, help="onnx (ONNX Runtime) or torchscript")
    parser.add_argument("--int8", action="store_true", help="static int8 quantisation, calibrated on images")
    parser.add_argument("--output", help="file to write (default: MODEL/model[.int8].onnx or "
                                         ".torchscript.pt, or the current folder for a Hub model)")
    parser.add_argument("--data", help="labelled photos (same forms as training): int8 calibrates on their train "
                                       "split, the check runs on their validation split (default: synthetic renders)")
    parser.add_argument("--check-images", type=int, default=200,
                        help="at most this many images each for calibration (train split) and the check (val split)")
    parser.add_argument("--min-agreement", type=float, default=0.95,
                        help="exit status 1 when fewer of the check images get the original's top-1 label")
    parser.add_argument("--revision", help="Hub revision of --model")


def run(args: argparse.Namespace) -> int:
    from .hub import PhoneGradeClassifier

    classifier = PhoneGradeClassifier.from_pretrained(args.model, revision=args.revision)
    output = Path(args.output) if args.output else default_output(args.model, args.format, args.int8)
    # Calibrate on training images, check on validation images: the check is not on what int8 was fitted to.
    calibration, _, _ = labelled_images(classifier, args.data, "train", args.check_images)
    pixels, labels, described = labelled_images(classifier, args.data, "val", args.check_images)
    export(classifier, args.format, args.int8, output, calibration)
    result = compare(classifier, load_exported(output), pixels, labels)
    print(f"wrote {output} ({args.format}, {'int8' if args.int8 else 'fp32'}, "
          f"{output.stat().st_size / 1e6:.1f} MB)")
    print(f"checked on {described}: top-1 agreement {100 * result['top1_agreement']:.1f}%, "
          f"max probability difference {result['max_probability_difference']:.4f}; accuracy "
          f"{result['accuracy_original']:.3f} original, {result['accuracy_exported']:.3f} exported")
    if result["top1_agreement"] < args.min_agreement:
        print(f"the export agrees with the original on fewer than {100 * args.min_agreement:.0f}% of the images "
              f"(--min-agreement)", file=sys.stderr)
        return 1
    return 0
