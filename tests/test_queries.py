"""The query engine: cache first, then the provider; a batch whose retries ran out on a transient
failure is sent again for the images still unanswered, never for those already paid."""

from collections.abc import Sequence

import pytest

from barapi.classifier import NULL_METER, Meter, Scores
from barapi.errors import BadInputError, ProviderError
from barapi.money import Budget
from barapi.run.queries import SEND_ROUNDS, QueryEngine
from barapi.store import Store


class FlakyClassifier:
    """Answers the first ``answered`` images of a call, then fails the rest with ``error``,
    for ``failing_calls`` calls."""

    name, model_id, max_batch, cache_scope = "flaky", "m", 1, "m"

    def __init__(self, error: ProviderError, failing_calls: int, answered: int = 2) -> None:
        self.error, self.failing_calls, self.answered = error, failing_calls, answered
        self.sent: list[int] = []

    def labels(self) -> list[str]:
        return ["a", "b"]

    def predict(self, images: Sequence[bytes], *, meter: Meter = NULL_METER) -> list[Scores]:
        self.sent.append(len(images))
        failing = len(self.sent) <= self.failing_calls
        results = []
        for i, image in enumerate(images):
            ticket = meter.before_send([image])
            if failing and i >= self.answered:
                meter.on_failure(ticket, maybe_billed=True)
                raise self.error
            answer = {"a": image[0] / 255, "b": 1 - image[0] / 255}
            meter.on_success(ticket, [answer])
            results.append(answer)
        return results


def engine(store: Store, classifier: FlakyClassifier) -> QueryEngine:
    return QueryEngine(classifier, store, Budget(max_usd=None, max_queries=None, per_1k=1.0), "run")


IMAGES = [bytes([i]) * 4 for i in range(6)]


def test_a_transient_failure_resends_only_the_unanswered_images(store: Store) -> None:
    classifier = FlakyClassifier(ProviderError("timed out"), failing_calls=1)
    answers = engine(store, classifier).score(IMAGES, all_or_nothing=True)
    assert [round(a["a"] * 255) for a in answers] == list(range(6))
    assert classifier.sent == [6, 4]  # the two answered before the failure were not sent again
    counts = store.ledger_counts("run")
    assert counts["paid"] == 6 and counts["failed"] == 1  # the failed attempt stays counted as spent


def test_rounds_are_bounded_and_permanent_errors_are_not_retried(store: Store) -> None:
    flaky = FlakyClassifier(ProviderError("server error", status=503), failing_calls=99, answered=0)
    with pytest.raises(ProviderError):
        engine(store, flaky).score(IMAGES)
    assert len(flaky.sent) == SEND_ROUNDS
    refused = FlakyClassifier(BadInputError("bad image", status=400), failing_calls=99, answered=0)
    with pytest.raises(BadInputError):
        engine(store, refused).score(IMAGES)
    assert refused.sent == [6]
