"""The linear readout: a deterministic, regularised multinomial logistic regression on log-scores."""

import numpy as np
import pytest

from barapi.method.readout import LinearReadout


def toy_answers(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax answers over 50 labels where each of 4 classes raises its own 3 labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 50))
    for c in range(4):
        logits[labels == c, 3 * c : 3 * c + 3] += 2.0
    dense = np.exp(logits)
    return dense / dense.sum(axis=1, keepdims=True), labels


def test_it_learns_a_mapping_that_generalises_and_outputs_probabilities() -> None:
    dense, labels = toy_answers(200, seed=0)
    readout = LinearReadout.fit(dense, labels, n_classes=4, l2=0.01)
    test_dense, test_labels = toy_answers(500, seed=1)
    scores = readout.target_scores(test_dense)
    assert scores.shape == (500, 4)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    assert np.mean(scores.argmax(axis=1) == test_labels) > 0.9  # chance is 0.25


def test_fit_is_deterministic_and_survives_a_checkpoint() -> None:
    dense, labels = toy_answers(80, seed=2)
    first = LinearReadout.fit(dense, labels, n_classes=4, l2=0.01)
    second = LinearReadout.fit(dense, labels, n_classes=4, l2=0.01)
    assert first.weights.tobytes() == second.weights.tobytes()
    restored = LinearReadout.from_state(first.state())
    np.testing.assert_array_equal(restored.target_scores(dense), first.target_scores(dense))


def test_zero_scores_and_more_l2_stay_finite_and_shrink_the_weights() -> None:
    dense, labels = toy_answers(60, seed=3)
    dense[:, 40:] = 0.0  # a top-k provider's answers after rounding
    loose = LinearReadout.fit(dense, labels, n_classes=4, l2=0.001)
    tight = LinearReadout.fit(dense, labels, n_classes=4, l2=1.0)
    assert np.all(np.isfinite(loose.target_scores(dense)))
    assert np.linalg.norm(tight.weights) < np.linalg.norm(loose.weights)


@pytest.mark.parametrize("steps", [50, 400])
def test_more_steps_never_raise_the_training_objective(steps: int) -> None:
    dense, labels = toy_answers(100, seed=4)

    def objective(readout: LinearReadout) -> float:
        p = readout.target_scores(dense)[np.arange(len(labels)), labels]
        return float(-np.mean(np.log(p)) + 0.01 / 2 * np.sum(readout.weights**2))

    short = LinearReadout.fit(dense, labels, n_classes=4, l2=0.01, steps=10)
    assert objective(LinearReadout.fit(dense, labels, n_classes=4, l2=0.01, steps=steps)) < objective(short)
