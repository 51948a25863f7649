"""Stand-ins shared by several test modules."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from barapi.classifier import NULL_METER, Meter, Scores
from barapi.errors import ProviderError

LABELS = [f"label{i:02d}" for i in range(60)]
MANY_LABELS = LABELS + [f"label{i:03d}" for i in range(60, 200)]


class ProjectionModel:
    """Softmax of a fixed random projection of the pixels: deterministic, cheap, black-box."""

    name, model_id, max_batch = "fake", "projection", 4

    def __init__(self, top_k: int | None = None, fail_after: int | None = None, vocabulary: int = len(LABELS), published: bool = True) -> None:
        projection = np.random.default_rng(42).normal(0, 1, size=(32 * 32 * 3, len(LABELS)))
        more = np.random.default_rng(43).normal(0, 1, size=(32 * 32 * 3, len(MANY_LABELS) - len(LABELS)))
        self.vocabulary = MANY_LABELS[:vocabulary]
        self.projection = np.hstack([projection, more])[:, :vocabulary] / 60
        self.top_k, self.fail_after, self.calls, self.published = top_k, fail_after, 0, published

    cache_scope = "projection"

    def labels(self) -> list[str] | None:
        return self.vocabulary if self.published else None

    def predict(self, images: Sequence[bytes], *, meter: Meter = NULL_METER) -> list[Scores]:
        results = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise ProviderError("injected crash", maybe_billed=False)
            self.calls += 1
            ticket = meter.before_send(chunk)
            answers = [self.answer(image) for image in chunk]
            meter.on_success(ticket, answers)
            results += answers
        return results


    def answer(self, image: bytes) -> Scores:
        logits = pixels(image).reshape(-1) @ self.projection * 8
        p = np.exp(logits - logits.max())
        p /= p.sum()
        order = np.argsort(-p)[: self.top_k or len(self.vocabulary)]
        return {self.vocabulary[i]: float(p[i]) for i in order}


def pixels(image: bytes) -> np.ndarray:
    """The PNG as 32×32 RGB in [-1, 1], whatever its size (the CLI renders 224px canvases)."""
    with Image.open(io.BytesIO(image)) as decoded:
        rgb = decoded.convert("RGB")
        if rgb.size != (32, 32):
            rgb = rgb.resize((32, 32), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.float64) / 127.5 - 1.0
