"""Exported models: writing ONNX (fp32, or int8 through ONNX Runtime's static quantiser) and TorchScript (fp32)
files that carry their labels and preprocessing, and running them (`ExportedClassifier`) without the model folder.

int8 is ONNX only. PyTorch's own int8 path (torch.ao FX quantisation, then TorchScript) is deprecated, and it
cannot trace timm's EfficientNet-Lite (its TensorFlow "SAME" padding depends on the input size), while ONNX Runtime
int8 of the same model agreed with fp32 on every held-out photo tried (docs/performance.md).
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from .data import PhotoDataset, model_validation_split
from .errors import ConfigError, ModelLoadError
from .transforms import Preprocessing, eval_transform

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
INPUT_NAME, OUTPUT_NAME = "pixels", "logits"
# What an exported file carries about itself, so that it can be used without the model folder.
CONFIG_KEYS = ("task", "arch", "labels", "image_size", "interpolation", "crop_pct", "mean", "std")
REQUIRED_KEYS = ("task", "arch", "labels", "image_size", "mean", "std")  # files of phonegrade 0.1 lack the others


# Only the convolutional trunk's ops (TRUNK_OPS) become int8: that is where the time goes. The head's small Linear /
# BatchNorm1d / PReLU layers cost almost nothing, and quantised they cost 15 points of accuracy on a synthetic set
# (measured); the first convolution, which sees the raw normalised pixels, stays fp32 too (that brought a
# MobileNetV2's int8 accuracy from 1 point below fp32 to equal).
TRUNK_OPS = ["Conv", "Relu", "Clip", "MaxPool", "AveragePool"]


def labelled_images(classifier, data: str | None, split: str,
                    count: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(pixels, labels, description): at most `count` images of `split` ("train" or "val") of `data`, or
    `count` synthetic renders of the model's task (a different set per split) when there is no data."""
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


def export_onnx(classifier, path: Path, example: torch.Tensor) -> None:
    """fp32 ONNX with a dynamic batch axis; labels and preprocessing go into the file's metadata."""
    import onnx

    torch.onnx.export(classifier.net.eval(), (example,), str(path), input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME], dynamic_shapes=({0: torch.export.Dim("batch")},),
                      dynamo=True, verbose=False, external_data=False)  # one self-contained file
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {key: json.dumps(value)
                                        for key, value in classifier.config.model_inputs().items()})
    onnx.save(model, str(path))


def quantize_onnx(fp32_path: Path, int8_path: Path, calibration: torch.Tensor, batch_size: int = 8) -> None:
    """Static int8 (QDQ) of the convolutional trunk: int8 weights per output channel, uint8 activations with
    calibrated ranges. The first convolution and the classification head stay fp32 (see TRUNK_OPS)."""
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
        # Shape inference and graph clean-up first, as ONNX Runtime's quantiser asks. ONNX's own shape inference:
        # ONNX Runtime's symbolic one fails on the phone prior's ReduceLogSumExp; without it the scratch default's
        # int8 folds grade every photo as before (benchmarks/int8_crossval.py).
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        first_conv = next(node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv")
        quantize_static(str(prepared), str(int8_path), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=TRUNK_OPS, nodes_to_exclude=[first_conv])


def export_torchscript(classifier, path: Path, example: torch.Tensor) -> None:
    """Traced and frozen fp32 TorchScript; labels and preprocessing go into the archive as config.json."""
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(classifier.net.eval(), example).eval())
    torch.jit.save(traced, str(path), _extra_files={"config.json": json.dumps(classifier.config.model_inputs())})


def load_exported(path: str | Path):
    """pixels (N×3×H×W, normalised) → logits, for an exported .onnx or TorchScript file."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # PyTorch's thread budget (OMP_NUM_THREADS; 1 per process under torchrun), not one thread per core each.
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda pixels: torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: pixels.contiguous().numpy()})[0])
    return torch.jit.load(str(path)).eval()


def exported_config(path: str | Path) -> dict:
    """The task, arch, labels and preprocessing stored in an exported file."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        metadata = onnx.load(str(path), load_external_data=False).metadata_props
        return {p.key: json.loads(p.value) for p in metadata if p.key in CONFIG_KEYS}
    # Read from the TorchScript archive (a zip) without loading the model.
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/extra/config.json")), None)
            return json.loads(archive.read(name)) if name else {}
    except (zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: not a TorchScript file written by `phonegrade export` ({err})") from err


class ExportedClassifier:
    """An exported file with what `phonegrade predict` needs: labels, preprocessing, pixels → logits (CPU)."""

    device = torch.device("cpu")

    def __init__(self, path: str | Path):
        self.config = exported_config(path)
        if not set(REQUIRED_KEYS) <= set(self.config):
            raise ModelLoadError(f"{path}: not a file written by `phonegrade export` (it lacks labels and "
                                 f"preprocessing)")
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


def export(classifier, fmt: str, int8: bool, output: Path, calibration: torch.Tensor) -> Path:
    """Write `classifier` to `output` in `fmt`; int8 ranges come from the `calibration` pixels."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if int8 and fmt != "onnx":
        raise ConfigError("int8 export is ONNX only (PyTorch's int8 TorchScript path is deprecated and cannot "
                          "trace EfficientNet-Lite): use --format onnx --int8")
    output.parent.mkdir(parents=True, exist_ok=True)
    example = calibration[:2].contiguous()
    if fmt == "torchscript":
        export_torchscript(classifier, output, example)
    elif int8:
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "model.onnx"
            export_onnx(classifier, fp32, example)
            quantize_onnx(fp32, output, calibration)
    else:
        export_onnx(classifier, output, example)
    return output
