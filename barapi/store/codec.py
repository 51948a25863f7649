"""How a cached answer's scores are stored: as few bytes as give the same float64 values back.

Providers answer in float32 more often than not (an ONNX or PyTorch softmax; the local server),
so scores that survive a float32 round trip are kept as float32; the rest as float64. Either
way the bytes are split into planes (every score's first byte, then every second byte, …),
which puts the near-constant sign and exponent bytes side by side, and deflated where that is
smaller. Decoding gives back the exact float64 values that were encoded, so a resumed run reads
the answers it paid for bit for bit."""

from __future__ import annotations

import zlib

import numpy as np

# codec id -> (dtype, byte planes deflated). 0 is what every answer before the codec was.
CODECS: dict[int, tuple[str, bool]] = {0: ("<f8", False), 1: ("<f4", False), 2: ("<f4", True), 3: ("<f8", True)}
LEVEL = 6


def encode_scores(values: np.ndarray) -> tuple[int, bytes]:
    """The smallest exact encoding of float64 ``values``: (codec id, bytes)."""
    values = np.asarray(values, dtype="<f8")
    with np.errstate(over="ignore", invalid="ignore"):  # a score float32 cannot hold is kept as float64
        narrow = values.astype("<f4")
    exact32 = bool(np.array_equal(narrow.astype("<f8"), values) and np.array_equal(np.signbit(narrow), np.signbit(values)))
    dtype = "<f4" if exact32 else "<f8"
    raw = (narrow if exact32 else values).tobytes()
    packed = zlib.compress(_planes(raw, np.dtype(dtype).itemsize), LEVEL)
    if len(packed) < len(raw):
        return (2 if exact32 else 3), packed
    return (1 if exact32 else 0), raw


def decode_scores(codec: int, data: bytes) -> np.ndarray:
    """The float64 scores ``encode_scores`` was given."""
    try:
        dtype, deflated = CODECS[codec]
    except KeyError:
        raise ValueError(f"unknown score codec {codec}: the store was written by a newer barapi") from None
    width = np.dtype(dtype).itemsize
    raw = _unplanes(zlib.decompress(data), width) if deflated else data
    return np.frombuffer(raw, dtype=dtype).astype("<f8")


def _planes(raw: bytes, width: int) -> bytes:
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, width).T.tobytes()


def _unplanes(planes: bytes, width: int) -> bytes:
    return np.frombuffer(planes, dtype=np.uint8).reshape(width, -1).T.tobytes()
