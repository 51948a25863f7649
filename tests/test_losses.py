import numpy as np
import pytest

from barapi.method.losses import accuracy, class_weights, cross_entropy, focal_loss


def test_focal_loss_reduces_to_cross_entropy_at_gamma_zero_and_unit_weights() -> None:
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(4), size=16)
    labels = rng.integers(0, 4, size=16)
    assert focal_loss(scores, labels, np.ones(4), gamma=0.0) == pytest.approx(cross_entropy(scores, labels))


def test_focal_loss_down_weights_confident_samples() -> None:
    confident = np.array([[0.9, 0.1]])
    unsure = np.array([[0.4, 0.6]])
    labels = np.array([0])
    ratio_focal = focal_loss(confident, labels, np.ones(2)) / focal_loss(unsure, labels, np.ones(2))
    ratio_ce = cross_entropy(confident, labels) / cross_entropy(unsure, labels)
    assert ratio_focal < ratio_ce


def test_class_weights_are_inverse_frequency_with_mean_one() -> None:
    weights = class_weights(np.array([0, 0, 0, 1]), 2)
    assert weights[1] / weights[0] == pytest.approx(3.0)
    assert weights.mean() == pytest.approx(1.0)


def test_accuracy_counts_argmax_hits() -> None:
    assert accuracy(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1])) == pytest.approx(2 / 3)


def test_evaluation_report_counts_and_two_class_rates() -> None:
    from barapi.run.evaluation import report

    figures = report(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), ["healthy", "sick"])
    assert figures["confusion"] == [[1, 1], [1, 2]]
    assert figures["accuracy"] == pytest.approx(3 / 5)
    assert figures["per_class"]["sick"] == {"accuracy": pytest.approx(2 / 3), "support": 3}
    assert figures["sensitivity"] == pytest.approx(2 / 3) and figures["specificity"] == pytest.approx(1 / 2)
