"""What the paid views add to the images alone (barapi.method.gain), on answers whose information
is known: the gain is found where only the views know the classes, refused where only the pixels
do, and not flattered by a choice among views that know nothing."""

from __future__ import annotations

import numpy as np
import pytest

from barapi.method.free import Block, free_block, log_proba, pixels
from barapi.method.gain import ApiGain, nested_gain
from barapi.method.portfolio import CrossValidation, forward_selection, standardised
from barapi.method.readout import features, softmax
from barapi.method.selection import FOLDS, stratified_folds

N_CLASSES, PER_CLASS, LABELS = 2, 40, 5


def task(seed: int, pixels_know: bool, views_know: int, candidates: int = 6, brighten: float = 0.8) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Candidates' answers over LABELS labels and 28×28 images; the first ``views_know`` candidates'
    answers lean towards a label that depends on the class, the images brighten with it if ``pixels_know``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    images = rng.normal(0.0, 1.0, (len(labels), 28, 28, 3)) + (brighten * labels[:, None, None, None] if pixels_know else 0.0)
    answers = []
    for k in range(candidates):
        logits = rng.normal(0.0, 1.0, (len(labels), LABELS))
        if k < views_know:
            logits[np.arange(len(labels)), labels] += 1.5
        answers.append(softmax(logits))
    return answers, images, labels


def judged(answers: list[np.ndarray], images: np.ndarray, labels: np.ndarray, views: int, usd_per_1k: float, read_with_pixels: bool = False) -> ApiGain:
    """The paid views alone against the pixels (``--free-views none``), or read with the pixels against them alone."""
    pixels_block = free_block(pixels(images))
    return nested_gain(answers, [pixels_block] if read_with_pixels else [], labels, N_CLASSES, views, usd_per_1k, [pixels_block]).gain


def test_a_gain_is_found_where_only_the_views_know_the_classes() -> None:
    answers, images, labels = task(0, pixels_know=False, views_know=2)
    gain = judged(answers, images, labels, views=2, usd_per_1k=2.4)
    assert gain.paid_cv_accuracy > 0.75 and gain.free_cv_accuracy < 0.65
    assert gain.beyond_noise and gain.as_json()["usd_per_1k_predictions"] == 2.4


def test_no_gain_is_claimed_where_only_the_images_know_the_classes() -> None:
    answers, images, labels = task(1, pixels_know=True, views_know=0)
    gain = judged(answers, images, labels, views=2, usd_per_1k=2.4)
    assert gain.free_cv_accuracy > 0.8 and gain.cv_accuracy < 0 and not gain.beyond_noise


@pytest.mark.parametrize("seed", [2, 3])
def test_views_chosen_among_many_that_know_nothing_are_not_flattered(seed: int) -> None:
    answers, images, labels = task(seed, pixels_know=False, views_know=0, candidates=12)
    gain = judged(answers, images, labels, views=4, usd_per_1k=4.8)
    # Chosen and scored on the same folds, as the run's own selection is: what that would claim.
    grams = [z @ z.T for z in (standardised(features(a)) for a in answers)]
    chosen = forward_selection(grams, 4, CrossValidation(labels, N_CLASSES))
    kernel, fold = sum(grams[c] for c in chosen) + 1.0, stratified_folds(labels, FOLDS)
    block = Block(kernel, 0.1)
    flattered = np.mean(np.concatenate([np.argmax(log_proba(block, labels, N_CLASSES, fold != k, fold == k), axis=1) == labels[fold == k]
                                        for k in range(FOLDS)]))
    assert abs(gain.paid_cv_accuracy - 0.5) < 3 * gain.se and not gain.beyond_noise
    assert flattered > gain.paid_cv_accuracy


def test_read_with_the_pixels_the_views_add_where_both_know_something_and_nothing_where_only_the_pixels_do() -> None:
    """Stacked (the free views' readout beside the paid views'): the gain is what the views add to
    the pixels' readout, judged on folds their choice never saw."""
    answers, images, labels = task(4, pixels_know=True, views_know=2, brighten=0.06)  # the pixels alone: about 3 in 4 right
    both = judged(answers, images, labels, views=2, usd_per_1k=2.4, read_with_pixels=True)
    alone = judged(answers, images, labels, views=2, usd_per_1k=2.4)
    assert both.beyond_noise and both.paid_cv_accuracy >= max(alone.paid_cv_accuracy, alone.free_cv_accuracy)
    answers, images, labels = task(5, pixels_know=True, views_know=0, candidates=12, brighten=0.06)
    nothing = judged(answers, images, labels, views=4, usd_per_1k=4.8, read_with_pixels=True)
    assert not nothing.beyond_noise and 0.6 < nothing.free_cv_accuracy < 0.95


def test_a_gain_survives_the_checkpoint() -> None:
    gain = ApiGain(paid_cv_accuracy=0.84, free_cv_accuracy=0.79, se=0.02, usd_per_1k_predictions=9.6)
    assert ApiGain.restored(gain.state()) == gain and ApiGain.restored(None) is None
    assert gain.as_json() == {"cv_accuracy": 0.05, "se": 0.02, "usd_per_1k_predictions": 9.6, "paid_cv_accuracy": 0.84,
                              "free_cv_accuracy": 0.79, "beyond_noise": True, "optimistic": False}


def test_a_one_program_run_says_what_its_answers_add_and_whether_its_steps_saw_the_folds(tmp_path) -> None:  # noqa: ANN001
    from fakes import ProjectionModel
    from test_trainer import config

    from barapi.config import DataConfig
    from barapi.run.planning import estimate_run
    from barapi.run.trainer import Trainer
    from barapi.store import Store

    ten_a_class = DataConfig(train_per_class=10, test_size=12)
    unstepped = config(name="start", iterations=0, mapping="linear", labels_per_class=None).model_copy(update={"data": ten_a_class})
    start = Trainer(unstepped, ProjectionModel(), Store(tmp_path)).run()
    stepped = config(name="stepped", iterations=3, mapping="linear", labels_per_class=None).model_copy(update={"data": ten_a_class})
    stepped = Trainer(stepped, ProjectionModel(), Store(tmp_path)).run()
    assert start.api_gain["optimistic"] is False and stepped.api_gain["optimistic"] is True
    assert start.api_gain["free_cv_accuracy"] == stepped.api_gain["free_cv_accuracy"] == pytest.approx(start.free_baseline["cv_accuracy"], abs=1e-4)
    assert start.api_gain["usd_per_1k_predictions"] == 1.0  # one query a prediction at $1.00/1k
    assert start.queries == estimate_run(unstepped, ProjectionModel(), Store(tmp_path / "estimate")).total  # judged from the cache: no query for it
