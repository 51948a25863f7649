"""How a run starts: the random W0, the provider's vocabulary, and the label mapping fitted to
W0's answers on the training images — after refusing a budget that could not end the run
measured. A mapping that cannot fit the vocabulary is refused before any paid query where the
provider publishes its labels, else after the first answer (which the mapping needs anyway)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from barapi.classifier import Classifier, Scores, SelectableLabels
from barapi.config import MethodConfig
from barapi.errors import ConfigError
from barapi.method import labels as labelling
from barapi.method.mapping import Mapping
from barapi.method.program import starting_parameters
from barapi.method.streams import Stream, generator
from barapi.run.records import State
from barapi.run.session import Session, Stage


class Opening(Session, Protocol):
    """What the start uses besides a stage's share of the session."""

    classifier: Classifier
    stages: Sequence[Stage]
    mappings: Callable[[MethodConfig, int, int], tuple[Mapping, str | None]]

    def ending(self, started: bool) -> tuple[int, int, int]: ...


def start_run(run: Opening) -> State:
    method = run.config.method
    w0 = starting_parameters(method, run.config.seed)
    run.optimizer.w = w0
    for stage in run.stages:
        stage.begin(run)
    images = run.program.encode_batch(w0, run.split.x_train)
    refuse_an_unaffordable_ending(run)
    with run.engine.ending():
        vocabulary, published, complete = _vocabulary(run, images[0])
    mapping = _new_mapping(run, vocabulary) if complete else None
    responses: list[Scores] = []
    if mapping is None or mapping.needs_start_answers or not published:
        run.emit("mapping", None, None)
        with run.engine.ending():
            responses = run.engine.score(images)
    if mapping is None:
        # Truncated answers (top-k) of an unpublished vocabulary: every label shown so far.
        vocabulary = sorted({label for r in responses for label in r})
        mapping = _new_mapping(run, vocabulary)
    dense = run.dense(responses, vocabulary) if mapping.needs_start_answers else None
    mapping.start(dense, run.split.y_train, len(vocabulary), generator(run.config.seed, Stream.MAPPING))
    state = State(0, vocabulary, mapping, np.zeros(0), None)
    focus(run.classifier, state)
    run.checkpoint(state, test_accuracy=None)
    return state


def refuse_an_unaffordable_ending(run: Opening) -> None:
    """Refuse, before the first query, a budget that cannot pay for the label mapping, the
    closing pass and the test set: a run that could not measure its program is money lost.
    (On a pool, the run's hold has already kept them aside.)"""
    start, closing, testing = run.ending(started=False)
    needed = start + closing + testing
    with run.engine.ending():
        affordable = run.engine.fits(needed)
    if not affordable:
        raise ConfigError(
            f"the budget ({run.engine.describe()}) cannot cover the label mapping ({start}), the closing pass ({closing}) "
            f"and the test set ({testing}): {needed} queries before any training; raise --budget / --max-queries "
            "or lower --train-per-class / --test-size" + (" / --views" if run.config.method.views > 1 else "")
        )


def _vocabulary(run: Opening, first_image: bytes) -> tuple[list[str], bool, bool]:
    """The provider's labels, whether it published them, and whether they are all of them:
    published, or read from the answer to the first image when it holds the whole distribution
    (every tag, as Azure answers). That image is the label mapping's first (a provider that does
    not publish its labels is always asked the whole training set): it is paid once, then cached."""
    published = run.classifier.labels()
    if published:
        return list(published), True, True
    answer = run.engine.score([first_image])[0]
    return sorted(answer), False, abs(sum(answer.values()) - 1.0) <= labelling.SCORE_TOLERANCE * len(answer)


def _new_mapping(run: Opening, vocabulary: list[str]) -> Mapping:
    mapping, notice = run.mappings(run.config.method, run.split.n_classes, len(vocabulary))
    if notice:
        run.emit("mapping", None, None, notice=notice)
    return mapping


def focus(classifier: Classifier, state: State) -> None:
    """Providers that can be asked for exactly the labels the scores depend on are, from here on:
    top-k truncation then never hides one."""
    labels = state.mapping.focus()
    if isinstance(classifier, SelectableLabels) and labels is not None:
        classifier.restrict_to(sorted({state.vocabulary[i] for i in labels}))
