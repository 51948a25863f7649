"""A portfolio's readout joined with the free views (barapi.method.views): the paid views kept
only where they add to the free ones beyond noise (barapi.method.gain), every block's readout
fitted on all the training images and, over several, stacked (barapi.method.free)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from barapi.method.free import COMBINER_L2, FREE_L2, Block, folds_of, free_block, out_of_fold
from barapi.method.portfolio import CrossValidation, Portfolio, chosen_l2, paid_gram
from barapi.method.readout import LinearReadout, LogLinearPool, StackedReadout


def joined(portfolio: Portfolio, specs: tuple[str, ...], free: Sequence[np.ndarray], answers: list[np.ndarray], labels: np.ndarray,
           n_classes: int, paid: bool, evidence: np.ndarray | None = None) -> Portfolio:
    """``answers``: the chosen views' training answers; ``free``: each free view's features of
    the training images (``specs``: their names); ``paid``: whether the views are served (else
    the free readout alone, and a prediction sends no query); ``evidence``: the out-of-fold
    log-probabilities the pool learns from (barapi.method.gain.Judged), paid first."""
    if evidence is not None and not paid:
        evidence = evidence[:, 1:]
    readout = stacked_readout(free, answers if paid else None, labels, n_classes, evidence)
    return replace(portfolio, programs=portfolio.programs if paid else portfolio.programs[:0], readout=readout, free=specs)


def stacked_readout(free: Sequence[np.ndarray], answers: list[np.ndarray] | None, labels: np.ndarray, n_classes: int,
                    evidence: np.ndarray | None = None) -> StackedReadout:
    """The readout over the paid views' ``answers`` (None: no paid view) and the free views'
    features, fitted on every training image (the paid block's penalty by cross-validation), the
    blocks pooled (even one: as barapi.method.free judges it) by a pool fitted on ``evidence``,
    or on the blocks' plain out-of-fold log-probabilities (views chosen on every image: they
    flatter the paid block) where none is given."""
    blocks, paid, columns = [], [], []
    if answers is not None:
        gram = paid_gram(answers)
        l2 = chosen_l2(gram, CrossValidation(labels, n_classes))
        dense = np.hstack(answers).astype(np.float64)
        blocks.append(LinearReadout.fit(dense, labels, n_classes, l2))
        paid.append(Block(gram + 1.0, l2))
        columns.append(dense.shape[1])
    blocks += [LinearReadout.fit(x, labels, n_classes, FREE_L2, logged=False, spread=1 / np.sqrt(x.shape[1])) for x in free]
    columns += [x.shape[1] for x in free]
    fold = folds_of(labels, n_classes)
    if evidence is None and fold is not None:
        evidence = out_of_fold(paid + [free_block(x) for x in free], labels, n_classes, fold)
    pool = LogLinearPool.fit(evidence, labels, n_classes, COMBINER_L2) if evidence is not None else LogLinearPool.even(len(blocks), n_classes)
    return StackedReadout(tuple(blocks), tuple(columns), pool)
