"""A run's random streams: one generator per purpose (and per step), seeded apart.

Every draw comes from a generator derived from (seed, purpose[, step]), never from state that
lives only in memory, so a resumed run draws exactly what the uninterrupted run drew; and no two
purposes ever share a generator (step t used to be seeded (seed, t), the same generator as the
starting W's at t = 1 and the random mapping's at t = 2).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    INIT = 1  # the starting W
    MAPPING = 2  # the random label mapping
    STEP = 3  # each training step's minibatch and directions, with the step's index
    CANDIDATE = 4  # a portfolio's candidate programs, with the candidate's index


def generator(seed: int, stream: Stream, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(stream), *index])
