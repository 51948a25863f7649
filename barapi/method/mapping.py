"""Label mappings: how a provider's answers become target-class scores, one interface for all.

A ``Mapping`` is to the trainer what an ``Estimator`` is to the optimiser: the trainer pays for
answers, hands the mapping dense arrays (n, labels) with their target labels, and asks it for
the mapper that steers training and the one predictions use. It never branches on which
mapping it drives, and nothing here knows about queries, budgets or the trainer.

- ``random``: m source labels per class drawn at random (needs no answer when the vocabulary is
  known);
- ``frequency``: the m labels each class's images score highest at the starting program;
- ``iterative``: the frequency mapping re-fitted from the answers training already paid for;
- ``linear``: a readout over every label's score (``barapi.method.readout``), refitted during training
  and once more at the final program (the closing pass), which is what predictions use.

The m-to-1 mappings need ``classes × m`` distinct labels. ``labels_per_class`` None means the
default m, or the largest m the vocabulary allows (``resolve_labels_per_class``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from barapi.method import labels as labelling
from barapi.errors import ConfigError
from barapi.method.readout import LinearReadout, prefixed

DEFAULT_LABELS_PER_CLASS = 5


@dataclass(frozen=True)
class MappingSettings:
    """What the mappings that re-fit themselves are built from (barapi.run.strategies reads them
    from a run's config)."""

    remap_every: int = 5  # iterative and linear: re-fit every N iterations
    remap_memory: float = 0.9  # iterative: weight older answers keep per iteration
    readout_l2: float = 0.01  # linear: the readout's L2 penalty


class Mapper(Protocol):
    def target_scores(self, dense: np.ndarray) -> np.ndarray:
        """(n, labels) source probabilities → (n, classes) target scores."""


class Mapping(Protocol):
    needs_start_answers: bool  # start() reads the training set's answers at the starting program
    reads_every_label: bool  # the scores depend on every label (no m to fit the vocabulary)

    @classmethod
    def start_queries(cls, n_train: int, labels_published: bool) -> int:
        """Queries the start costs: the training set at W0, unless neither the mapping nor the
        vocabulary needs it."""

    @classmethod
    def closing_queries(cls, n_train: int) -> int:
        """Queries the closing pass costs (one per training image, or none)."""

    def start(self, dense: np.ndarray | None, labels: np.ndarray, vocabulary_size: int, rng: np.random.Generator) -> None:
        """Build the mapping from the training set's answers at the starting program."""

    def observe(self, iteration: int, dense: np.ndarray, labels: np.ndarray) -> None:
        """The answers at W that training step ``iteration`` paid for (re-fits cost nothing)."""

    def training_mapper(self) -> Mapper: ...

    def lags(self, iteration: int) -> bool:
        """Whether predictions at this W need a closing pass first."""

    def close(self, iteration: int, dense: np.ndarray, labels: np.ndarray) -> None:
        """The closing pass: every training image answered at the W of ``iteration``."""

    def fitted(self, dense: np.ndarray, labels: np.ndarray) -> Mapper:
        """What the closing pass would fit on these answers, without keeping it."""

    def serving_mapper(self, iteration: int) -> Mapper:
        """The mapper predictions use at the W of ``iteration``."""

    def focus(self) -> np.ndarray | None:
        """Vocabulary indices the scores depend on, if a provider may be asked for just those."""

    def described(self) -> np.ndarray:
        """(classes, m) vocabulary indices: the labels named per class in exports."""

    def state(self, iteration: int) -> dict[str, np.ndarray]: ...

    def load(self, arrays: dict[str, np.ndarray], iteration: int) -> None: ...


def resolve_labels_per_class(mapping: str, wanted: int | None, vocabulary_size: int, n_classes: int) -> tuple[int, str | None]:
    """m for the m-to-1 mappings (``wanted``, or the default), and a notice when the default had
    to shrink to fit. Refuses, naming the fix, when no m fits or an explicit m does not."""
    fits = vocabulary_size // n_classes
    if MAPPINGS[mapping].reads_every_label:
        # m only names labels in exports: whatever fits, never a refusal.
        return max(min(wanted or DEFAULT_LABELS_PER_CLASS, fits), 0), None
    if fits < 1:
        raise ConfigError(
            f"{n_classes} classes need at least {n_classes} distinct source labels for --mapping {mapping}, "
            f"but the model knows {vocabulary_size}: use --mapping linear (a readout over every label's score)"
        )
    if wanted is None:
        if fits < DEFAULT_LABELS_PER_CLASS:
            return fits, f"the model knows {vocabulary_size} labels: {fits} per class instead of {DEFAULT_LABELS_PER_CLASS}"
        return DEFAULT_LABELS_PER_CLASS, None
    labelling.check_mapping_size(vocabulary_size, n_classes, wanted)
    return wanted, None


class AssignedMapping:
    """m source labels per class, averaged (the paper's h); fixed once started."""

    needs_start_answers = True
    reads_every_label = False  # the scores depend on the m labels per class only

    def __init__(self, n_classes: int, labels_per_class: int, settings: MappingSettings = MappingSettings()) -> None:
        self.settings, self.n_classes, self.labels_per_class = settings, n_classes, labels_per_class
        self.assignment = np.zeros((n_classes, labels_per_class), int)

    @classmethod
    def start_queries(cls, n_train: int, labels_published: bool) -> int:
        return n_train if cls.needs_start_answers or not labels_published else 0

    @classmethod
    def closing_queries(cls, n_train: int) -> int:
        return 0

    def start(self, dense: np.ndarray | None, labels: np.ndarray, vocabulary_size: int, rng: np.random.Generator) -> None:
        assert dense is not None
        self.assignment = labelling.frequency_mapping(dense, labels, self.n_classes, self.labels_per_class).assignment

    def observe(self, iteration: int, dense: np.ndarray, labels: np.ndarray) -> None:
        return None

    def training_mapper(self) -> Mapper:
        return labelling.LabelMap(self.assignment)

    def lags(self, iteration: int) -> bool:
        return False

    def close(self, iteration: int, dense: np.ndarray, labels: np.ndarray) -> None:
        return None

    def fitted(self, dense: np.ndarray, labels: np.ndarray) -> Mapper:
        return self.training_mapper()

    def serving_mapper(self, iteration: int) -> Mapper:
        return self.training_mapper()

    def focus(self) -> np.ndarray | None:
        return np.unique(self.assignment)

    def described(self) -> np.ndarray:
        return self.assignment

    def state(self, iteration: int) -> dict[str, np.ndarray]:
        return {"assignment": self.assignment}

    def load(self, arrays: dict[str, np.ndarray], iteration: int) -> None:
        self.assignment = np.asarray(arrays["assignment"], dtype=int)
        self.labels_per_class = self.assignment.shape[1]


class FrequencyMapping(AssignedMapping):
    pass


class RandomMapping(AssignedMapping):
    needs_start_answers = False

    def start(self, dense: np.ndarray | None, labels: np.ndarray, vocabulary_size: int, rng: np.random.Generator) -> None:
        self.assignment = labelling.random_mapping(vocabulary_size, self.n_classes, self.labels_per_class, rng).assignment


class IterativeMapping(AssignedMapping):
    """ILM-VP made black-box: the answers at W that each step already paid for update each
    class's affinity to the source labels; every few steps the mapping is re-fitted."""

    def start(self, dense: np.ndarray | None, labels: np.ndarray, vocabulary_size: int, rng: np.random.Generator) -> None:
        super().start(dense, labels, vocabulary_size, rng)
        assert dense is not None
        self.sums, self.counts = labelling.class_sums(dense, labels, self.n_classes)

    def observe(self, iteration: int, dense: np.ndarray, labels: np.ndarray) -> None:
        sums, counts = labelling.class_sums(dense, labels, self.n_classes)
        self.sums = self.settings.remap_memory * self.sums + sums
        self.counts = self.settings.remap_memory * self.counts + counts
        if iteration % self.settings.remap_every == 0:
            affinity = self.sums / np.maximum(self.counts, 1e-12)[:, None]
            self.assignment = labelling.greedy_mapping(affinity, self.labels_per_class).assignment

    def focus(self) -> np.ndarray | None:
        return None  # it must keep seeing every label to re-fit

    def state(self, iteration: int) -> dict[str, np.ndarray]:
        return super().state(iteration) | {"affinity_sums": self.sums, "affinity_counts": self.counts}

    def load(self, arrays: dict[str, np.ndarray], iteration: int) -> None:
        super().load(arrays, iteration)
        self.sums, self.counts = arrays["affinity_sums"], arrays["affinity_counts"]


class LinearMapping(AssignedMapping):
    """A readout over every label's score. Training steers by one refitted every few steps on
    the latest answers at W (≤ one per training image, from the last epoch's programs, so it
    lags behind W); predictions use one fitted on every training image answered at the final W
    (the closing pass), which never steers training, so a run extended after its closing pass
    goes on as if never stopped. The assignment only names labels in exports."""

    reads_every_label = True

    def __init__(self, n_classes: int, labels_per_class: int, settings: MappingSettings = MappingSettings()) -> None:
        super().__init__(n_classes, labels_per_class, settings)
        self.readout: dict[str, np.ndarray] = {}
        self.closing_readout: dict[str, np.ndarray] = {}
        self.read_at = -1

    @classmethod
    def closing_queries(cls, n_train: int) -> int:
        return n_train

    def start(self, dense: np.ndarray | None, labels: np.ndarray, vocabulary_size: int, rng: np.random.Generator) -> None:
        assert dense is not None
        if self.labels_per_class:
            super().start(dense, labels, vocabulary_size, rng)
        self.answers, self.answer_labels = dense.astype(np.float32), labels.copy()
        self.readout = self._fit(self.answers, self.answer_labels)
        # The start's answers are every training image at W0: the readout is already a closing one.
        self.closing_readout, self.read_at = self.readout, 0

    def observe(self, iteration: int, dense: np.ndarray, labels: np.ndarray) -> None:
        keep = len(self.answers)
        self.answers = np.concatenate([self.answers, dense.astype(np.float32)])[-keep:]
        self.answer_labels = np.concatenate([self.answer_labels, labels])[-keep:]
        if iteration % self.settings.remap_every == 0:
            self.readout = self._fit(self.answers, self.answer_labels)

    def training_mapper(self) -> Mapper:
        return LinearReadout.from_state(self.readout)

    def lags(self, iteration: int) -> bool:
        return self.read_at != iteration

    def close(self, iteration: int, dense: np.ndarray, labels: np.ndarray) -> None:
        self.closing_readout, self.read_at = self._fit(dense, labels), iteration

    def fitted(self, dense: np.ndarray, labels: np.ndarray) -> Mapper:
        return LinearReadout.from_state(self._fit(dense, labels))

    def serving_mapper(self, iteration: int) -> Mapper:
        return LinearReadout.from_state(self._serving(iteration))

    def focus(self) -> np.ndarray | None:
        return None  # the readout reads every label

    def _serving(self, iteration: int) -> dict[str, np.ndarray]:
        return self.closing_readout if self.read_at == iteration else self.readout

    def _fit(self, dense: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        return LinearReadout.fit(dense.astype(np.float64), labels, self.n_classes, self.settings.readout_l2).state()

    def state(self, iteration: int) -> dict[str, np.ndarray]:
        # "readout.*" is what predictions use (exports read it).
        return super().state(iteration) | {
            "answers": self.answers, "answer_labels": self.answer_labels, "read_at": np.asarray(self.read_at),
        } | {f"training_readout.{k}": v for k, v in self.readout.items()} | {f"readout.{k}": v for k, v in self._serving(iteration).items()}

    def load(self, arrays: dict[str, np.ndarray], iteration: int) -> None:
        super().load(arrays, iteration)
        # Checkpoints written before the closing pass existed hold one readout, for both uses.
        self.readout = prefixed(arrays, "training_readout.") or prefixed(arrays, "readout.")
        self.answers, self.answer_labels = arrays["answers"], arrays["answer_labels"]
        self.read_at = int(arrays.get("read_at", -1))
        self.closing_readout = prefixed(arrays, "readout.") if self.read_at == iteration else {}


MAPPINGS: dict[str, type[AssignedMapping]] = {
    "frequency": FrequencyMapping,
    "random": RandomMapping,
    "iterative": IterativeMapping,
    "linear": LinearMapping,
}
