"""The provider contract and the per-attempt metering hook.

Adapters call the meter around every HTTP attempt, retries included, so that money is reserved
before each send and every response is stored the moment it arrives: a crash loses at most the
requests in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

Scores = dict[str, float]


class Meter(Protocol):
    def before_send(self, images: Sequence[bytes]) -> Any:
        """Reserve the cost of sending ``images``; raises BudgetExceeded if it does not fit."""

    def on_success(self, ticket: Any, results: Sequence[Scores]) -> None:
        """The provider answered: the reservation becomes a payment, the answers are cached."""

    def on_failure(self, ticket: Any, maybe_billed: bool) -> None:
        """The attempt failed: a possibly billed one stays spent, otherwise it is released."""


class NullMeter:
    """No budget, no cache: for callers that only want predictions."""

    def before_send(self, images: Sequence[bytes]) -> None:
        return None

    def on_success(self, ticket: Any, results: Sequence[Scores]) -> None:
        return None

    def on_failure(self, ticket: Any, maybe_billed: bool) -> None:
        return None


NULL_METER = NullMeter()


class Classifier(Protocol):
    name: str  # "clarifai", "azure", "torchserve", ...
    model_id: str  # what the price table uses
    max_batch: int  # images per HTTP request the provider accepts

    @property
    def cache_scope(self) -> str:
        """Everything besides the image bytes that changes the answer (model, version, options)."""

    def labels(self) -> Sequence[str] | None:
        """The provider's vocabulary when its API exposes one."""

    def predict(self, images: Sequence[bytes], *, meter: Meter = NULL_METER) -> list[Scores]:
        """Encoded images → per image, label → probability as the provider gave it."""


def canvas_encoding(classifier: object) -> str:
    """How the classifier takes a canvas: "png8" (any image API), or "float32" where it declares
    ``canvas_encoding`` so (a tensor API, sent the program unrounded)."""
    return getattr(classifier, "canvas_encoding", "png8")


@runtime_checkable
class SelectableLabels(Protocol):
    """A provider that can be asked for exactly some labels (Clarifai's select_concepts)."""

    def restrict_to(self, labels: Sequence[str]) -> None: ...
