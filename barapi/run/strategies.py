"""A run's config turned into the strategies it drives: each strategy is built from its own
settings (barapi.method knows nothing of the run's config), and here those settings are read."""

from __future__ import annotations

import numpy as np

from barapi.config import MethodConfig
from barapi.errors import ConfigError
from barapi.method.mapping import MAPPINGS, Mapping, MappingSettings, resolve_labels_per_class
from barapi.method.optim import OPTIMIZERS, Optimizer, StepSettings


def step_settings(method: MethodConfig) -> StepSettings:
    return StepSettings(estimator=method.estimator, q=method.q, beta=method.perturbation_radius, lr=method.lr, lr_decay=method.lr_decay)


def optimizer_for(method: MethodConfig, w: np.ndarray | None = None) -> Optimizer:
    """A run's optimiser, at W (zeros until the run's start sets it)."""
    w = np.zeros(method.geometry.parameter_shape) if w is None else w
    if method.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {method.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[method.optimizer](w, step_settings(method))


def mapping_settings(method: MethodConfig) -> MappingSettings:
    return MappingSettings(remap_every=method.remap_every, remap_memory=method.remap_memory, readout_l2=method.readout_l2)


def new_mapping(method: MethodConfig, n_classes: int, vocabulary_size: int) -> tuple[Mapping, str | None]:
    """The run's mapping before it starts, sized for the vocabulary (with a notice if m shrank)."""
    labels_per_class, notice = resolve_labels_per_class(method.mapping, method.labels_per_class, vocabulary_size, n_classes)
    return MAPPINGS[method.mapping](n_classes, labels_per_class, mapping_settings(method)), notice


def restored_mapping(method: MethodConfig, n_classes: int, arrays: dict[str, np.ndarray], iteration: int) -> Mapping:
    mapping = MAPPINGS[method.mapping](n_classes, 0, mapping_settings(method))
    mapping.load(arrays, iteration)
    return mapping


def closing_queries(method: MethodConfig, n_train: int) -> int:
    """One closing pass's queries, when training moved a program away from where it was answered:
    the mapping's for the one program; a refined portfolio's view, every training image."""
    if not method.iterations:
        return 0
    return n_train if method.is_portfolio else MAPPINGS[method.mapping].closing_queries(n_train)


def closing_passes(method: MethodConfig) -> int:
    """The closing passes a run pays for: one per view that refinement steps move
    (barapi.method.portfolio.refinement_blocks; an interim evaluation refits from the views'
    answers), else one at the end and one per interim evaluation."""
    return min(method.iterations, method.views) if method.is_portfolio else 1 + method.interim_evaluations
