import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from barapi.errors import ConfigError, ProviderResponseError
from barapi.method.labels import LabelMap, fill_missing, frequency_mapping, imagenet_classes, random_mapping

VOCAB = [f"label{i}" for i in range(10)]


def test_imagenet_vocabulary_has_1000_distinct_names() -> None:
    names = imagenet_classes()
    assert len(names) == 1000 == len(set(names))
    assert names[0] == "tench"


def test_top_k_fill_in_spreads_the_remaining_mass_evenly() -> None:
    dense = fill_missing({"label0": 0.5, "label3": 0.3}, VOCAB)
    assert dense[0] == 0.5 and dense[3] == 0.3
    assert np.allclose(dense[[1, 2, 4, 5, 6, 7, 8, 9]], 0.2 / 8)
    assert dense.sum() == pytest.approx(1.0)


@given(st.dictionaries(st.sampled_from(VOCAB + ["unknown"]), st.floats(0, 1), min_size=1))
def test_top_k_fill_in_always_sums_to_one(scores: dict) -> None:
    dense = fill_missing(scores, VOCAB)
    assert dense.sum() == pytest.approx(1.0)
    assert (dense >= 0).all()


@pytest.mark.parametrize("bad", [float("nan"), -0.5, 1.5, float("inf")])
def test_impossible_scores_are_refused(bad: float) -> None:
    with pytest.raises(ProviderResponseError):
        fill_missing({"label0": bad}, VOCAB)


def test_target_score_is_the_mean_of_its_source_labels() -> None:
    mapping = LabelMap(np.array([[0, 1], [2, 3]]))
    dense = np.array([[0.1, 0.3, 0.2, 0.0]])
    assert np.allclose(mapping.target_scores(dense), [[0.2, 0.1]])


def test_frequency_mapping_assigns_disjoint_labels_by_predicted_probability() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    dense = rng.dirichlet(np.ones(10), size=60) * 0.1
    for c, favourite in enumerate([7, 2, 5]):
        dense[labels == c, favourite] += 0.5
    mapping = frequency_mapping(dense, labels, 3, 2)
    assert mapping.assignment.shape == (3, 2)
    assert len(set(mapping.assignment.ravel())) == 6  # disjoint
    assert [row[0] for row in mapping.assignment] == [7, 2, 5]


def test_frequency_mapping_stays_disjoint_when_one_label_dominates_everything() -> None:
    labels = np.repeat(np.arange(4), 5)
    dense = np.full((20, 10), 0.01)
    dense[:, 0] = 0.91  # a saturated model: every image → label 0
    mapping = frequency_mapping(dense, labels, 4, 2)
    assert len(set(mapping.assignment.ravel())) == 8


def test_random_mapping_is_disjoint_and_seeded() -> None:
    a = random_mapping(1000, 10, 3, np.random.default_rng(5))
    b = random_mapping(1000, 10, 3, np.random.default_rng(5))
    assert np.array_equal(a.assignment, b.assignment)
    assert len(set(a.assignment.ravel())) == 30


def test_mapping_needs_enough_source_labels() -> None:
    with pytest.raises(ConfigError, match="labels-per-class"):
        random_mapping(5, 3, 2, np.random.default_rng(0))
