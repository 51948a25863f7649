"""How W's coordinates become canvas values: the bases a program can be written in, by name.

Each maps (canvas side, W's side) to a (canvas, W) matrix B, so that the canvas is B W Bᵀ per
channel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def interpolation_matrix(out_size: int, in_size: int) -> np.ndarray:
    """Linear interpolation (align-corners) as a matrix, so upsampling is two matrix products."""
    if in_size == out_size:
        return np.eye(out_size)
    if in_size == 1:
        return np.ones((out_size, 1))
    position = np.linspace(0.0, in_size - 1, out_size)
    low = np.minimum(np.floor(position).astype(int), in_size - 2)
    frac = position - low
    matrix = np.zeros((out_size, in_size))
    matrix[np.arange(out_size), low] = 1.0 - frac
    matrix[np.arange(out_size), low + 1] += frac
    return matrix


def cosine_matrix(out_size: int, in_size: int) -> np.ndarray:
    """The lowest ``in_size`` DCT-II frequencies as columns, scaled so that each pixel's row has
    a mean square of 1 (as an interpolation row about has): a move of W by one unit per
    coordinate moves a pixel by about one unit, whichever basis W is in."""
    pixel = np.arange(out_size)[:, None] + 0.5
    matrix = np.cos(np.pi * pixel * np.arange(in_size)[None, :] / out_size)
    matrix[:, 1:] *= np.sqrt(2.0)
    return matrix / np.sqrt(in_size)


BASES: dict[str, Callable[[int, int], np.ndarray]] = {"bilinear": interpolation_matrix, "cosine": cosine_matrix}
