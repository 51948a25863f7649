"""How a cached answer's scores are stored: as few bytes as give the same float64 values back.

Providers answer in float32 more often than not (an ONNX or PyTorch softmax; the local server),
or in decimals a JSON API rounded; float64 is what a score is read back as. Each answer is
stored in the smallest of a few exact forms: float32 where that holds every score, decimals as
integers where every score is one with at most 15 places, else float64; raw, or deflated, with
the bytes split into planes (every score's first byte, then every second byte, …: the
near-constant sign and exponent bytes side by side) or as they are (repeated scores side by
side). Decoding gives back the exact float64 values that were encoded, so a resumed run reads
the answers it paid for bit for bit."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

LEVEL = 6
MAX_PLACES = 15  # an integer of up to 2**53 is exact in float64


def _planes(raw: bytes, width: int) -> bytes:
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, width).T.tobytes()


def _unplanes(planes: bytes, width: int) -> bytes:
    return np.frombuffer(planes, dtype=np.uint8).reshape(width, -1).T.tobytes()


def _as_float32(values: np.ndarray) -> bytes | None:
    with np.errstate(over="ignore", invalid="ignore"):  # a score float32 cannot hold is kept otherwise
        narrow = values.astype("<f4")
    same = np.array_equal(narrow.astype("<f8"), values) and np.array_equal(np.signbit(narrow), np.signbit(values))
    return narrow.tobytes() if same else None


def _as_decimal(values: np.ndarray) -> bytes | None:
    """One byte of places, then every score times 10**places as an int64; None unless exact."""
    if not np.all(np.isfinite(values)) or np.any(np.signbit(values) & (values == 0)):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        for places in range(MAX_PLACES + 1):
            scaled = np.round(values * 10.0**places)
            if np.all(np.abs(scaled) < 2**53) and np.array_equal(scaled / 10.0**places, values):
                return bytes([places]) + scaled.astype("<i8").tobytes()
    return None


def _from_decimal(data: bytes) -> np.ndarray:
    return np.frombuffer(data[1:], dtype="<i8").astype("<f8") / 10.0 ** data[0]


# codec id -> (the exact form of the scores or None, the scores back from it, item width, byte
# planes, deflated). 0 is what every answer before the codec was.
_FLOAT64 = (lambda v: v.tobytes(), lambda b: np.frombuffer(b, dtype="<f8"), 8)
_FLOAT32 = (_as_float32, lambda b: np.frombuffer(b, dtype="<f4").astype("<f8"), 4)
_DECIMAL = (_as_decimal, _from_decimal, 8)
CODECS: dict[int, tuple[Callable, Callable, int, bool, bool]] = {
    0: (*_FLOAT64, False, False), 1: (*_FLOAT32, False, False), 2: (*_FLOAT32, True, True), 3: (*_FLOAT64, True, True),
    4: (*_FLOAT64, False, True), 5: (*_DECIMAL, True, True), 6: (*_FLOAT32, False, True),
}


def encode_scores(values: np.ndarray) -> tuple[int, bytes]:
    """The smallest exact encoding of float64 ``values``: (codec id, bytes)."""
    values = np.asarray(values, dtype="<f8")
    best = (0, values.tobytes())
    narrow = _as_float32(values)
    # Scores float32 holds take fewer bytes so than any other way but by chance: the others are
    # tried only for scores it does not hold.
    forms = {_as_float32: narrow} if narrow is not None else {_FLOAT64[0]: best[1], _as_decimal: _as_decimal(values)}
    for codec, (form, _, width, planes, deflated) in CODECS.items():
        raw = forms.get(form)
        if raw is None:
            continue
        if planes:
            head = 1 if form is _as_decimal else 0  # the places byte stays in front
            raw = raw[:head] + _planes(raw[head:], width)
        data = zlib.compress(raw, LEVEL) if deflated else raw
        if len(data) < len(best[1]):
            best = (codec, data)
    return best


def decode_scores(codec: int, data: bytes) -> np.ndarray:
    """The float64 scores ``encode_scores`` was given."""
    try:
        form, back, width, planes, deflated = CODECS[codec]
    except KeyError:
        raise ValueError(f"unknown score codec {codec}: the store was written by a newer barapi") from None
    raw = zlib.decompress(data) if deflated else data
    if planes:
        head = 1 if form is _as_decimal else 0
        raw = raw[:head] + _unplanes(raw[head:], width)
    return back(raw).astype("<f8")
