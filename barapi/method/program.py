"""The adversarial program: where the target image sits, the mask, and P = tanh(B(W) ⊙ M).

B turns W's coordinates into canvas values: a bilinear grid (W upsampled) or the lowest spatial
frequencies (W holds cosine coefficients). Either spans the part of the canvas the provider's model
sees after its own crop (``visible_size``): a coordinate spent where nothing is seen is noise in
every zeroth-order estimate.

Values live in [-1, 1] (the paper's scaled input space). What leaves this module for an API is
8-bit PNG bytes, because that is all an image API ever sees — or, for an API that takes tensors
(the Open Inference Protocol), the canvas itself as float32 (a .npy), unrounded: a step below one
grey level then still moves what the model sees. Either way the loss is computed on the responses
to exactly those bytes.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from barapi.method.bases import BASES
from barapi.config import Geometry, MethodConfig
from barapi.method.streams import Stream, generator


# Encoding is on the hot path ((q+1) images per sample per step) and the bytes only need to be
# lossless and deterministic: zlib level 1 with PNG's "Sub" filter is ~4x faster than pillow's
# adaptive filtering and compresses a smooth program almost as well.
PNG_COMPRESS_LEVEL = 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_FILTER_SUB = 1
NPY_MAGIC = b"\x93NUMPY"


class Program:
    """Renders target images with a program W into the bytes sent to an API."""

    def __init__(self, geometry: Geometry, encoding: str = "png8") -> None:
        self.geometry, self.encoding = geometry, encoding
        g = geometry
        self.mask = np.ones((g.canvas_size, g.canvas_size, 1))
        self.mask[g.offset : g.offset + g.embed_size, g.offset : g.offset + g.embed_size] = 0.0
        # Canvas rows × W's side: the basis over the visible square, zero where the model crops.
        self.expansion = np.zeros((g.canvas_size, g.resolution))
        start = (g.canvas_size - g.span) // 2
        self.expansion[start : start + g.span] = BASES[g.basis](g.span, g.resolution)
        # A basis that is the identity (one coordinate per pixel) needs no products.
        self._identity = self.expansion.shape[0] == self.expansion.shape[1] and np.array_equal(self.expansion, np.eye(g.canvas_size))

    def perturbation(self, w: np.ndarray) -> np.ndarray:
        """P = tanh(B(W) ⊙ M), shape (canvas, canvas, 3), in [-1, 1]."""
        if w.shape != self.geometry.parameter_shape:
            raise ValueError(f"W has shape {w.shape}, expected {self.geometry.parameter_shape}")
        full = w if self._identity else np.einsum("ir,rsc,js->ijc", self.expansion, w, self.expansion, optimize=True)
        return np.tanh(full * self.mask)

    def compose(self, w: np.ndarray, target: np.ndarray) -> np.ndarray:
        """clip(X + P): the target image (embed×embed×3, [-1, 1]) in the centre, P elsewhere."""
        return self.compose_with(self.perturbation(w), target)

    def compose_with(self, perturbation: np.ndarray, target: np.ndarray) -> np.ndarray:
        return self._paste(perturbation, target)

    def _paste(self, canvas: np.ndarray, target: np.ndarray) -> np.ndarray:
        # X is zero outside the embedding and P is zero inside it, so clip(X + P) is a paste.
        g = self.geometry
        canvas = canvas.copy()
        canvas[g.offset : g.offset + g.embed_size, g.offset : g.offset + g.embed_size] = target
        return canvas

    def encode_batch(self, w: np.ndarray, targets: np.ndarray) -> list[bytes]:
        """The bytes an API receives for each target image under program W, in this program's
        canvas encoding (CANVAS_ENCODINGS)."""
        return CANVAS_ENCODINGS[self.encoding](self, w, targets)

    def encode_on(self, canvas: np.ndarray, targets: np.ndarray) -> list[bytes]:
        """The PNG bytes for each target image pasted on an 8-bit program canvas."""
        return [png_bytes(self._paste(canvas, quantize(t))) for t in targets]


def png8(program: Program, w: np.ndarray, targets: np.ndarray) -> list[bytes]:
    """8-bit PNGs. Quantising P and the targets separately is exact: the paste never mixes their pixels."""
    return program.encode_on(quantize(program.perturbation(w)), targets)


def float32(program: Program, w: np.ndarray, targets: np.ndarray) -> list[bytes]:
    """The canvases unrounded, as .npy float32 (npy_bytes)."""
    perturbation = program.perturbation(w)
    return [npy_bytes(program.compose_with(perturbation, target)) for target in targets]


# How a canvas leaves for an API, by name (a classifier declares which it takes).
CANVAS_ENCODINGS: dict[str, Callable[[Program, np.ndarray, np.ndarray], list[bytes]]] = {"png8": png8, "float32": float32}


def quantize(canvas: np.ndarray) -> np.ndarray:
    """[-1, 1] floats → the uint8 pixels an API receives."""
    return np.rint((np.clip(canvas, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def npy_bytes(canvas: np.ndarray) -> bytes:
    """The [-1, 1] canvas as float32 in .npy form: lossless, deterministic, self-describing."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(canvas, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def float_canvas(data: bytes) -> np.ndarray | None:
    """A float canvas (H, W, 3) in [-1, 1] sent as .npy; None for encoded image bytes."""
    if not data.startswith(NPY_MAGIC):
        return None
    canvas = np.load(io.BytesIO(data), allow_pickle=False)
    if canvas.ndim != 3 or canvas.shape[2] != 3 or not np.all(np.isfinite(canvas)):
        raise ValueError(f"a float canvas must be finite (height, width, 3), got {canvas.shape}")
    return canvas


def encode_png(canvas: np.ndarray) -> bytes:
    return png_bytes(quantize(canvas))


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB PNG, written directly (see PNG_FILTER_SUB)."""
    height, width, _ = pixels.shape
    rows = pixels.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = PNG_FILTER_SUB
    filtered[:, 1:4] = rows[:, :3]
    filtered[:, 4:] = rows[:, 3:] - rows[:, :-3]  # uint8 arithmetic wraps mod 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(filtered.tobytes(), PNG_COMPRESS_LEVEL)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def decode_png(data: bytes) -> np.ndarray:
    """Bytes → [-1, 1] floats (the inverse of encode_png up to quantisation)."""
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    return pixels / 127.5 - 1.0


def initial_parameters(geometry: Geometry, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A random start. Never W = 0: a canvas value of 0 sits exactly on the 8-bit rounding
    boundary (127.5), so every perturbation would flip whole grey levels by its sign alone."""
    return rng.normal(0.0, scale, size=geometry.parameter_shape)


def starting_parameters(method: MethodConfig, seed: int) -> np.ndarray:
    """A run's W0, drawn from its own stream: the trainer and the estimate derive it alike."""
    return initial_parameters(method.geometry, method.init_scale, generator(seed, Stream.INIT))


def program_sha256(w: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(w, dtype=np.float64).tobytes()).hexdigest()
