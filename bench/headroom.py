"""How much a better program could add at all, with the linear readout (issue: query efficiency).

The efficiency benchmark shows the default's test accuracy staying near its zero-program value
as the budget grows. This asks where the ceiling is, without any training step, in one run per
dataset:

  - programs: the readout's test accuracy (fitted at each program on the training images
    answered there) for random programs W of growing size — how far the program alone moves it;
  - data: the same at the starting program with more or fewer labelled training images per
    class — how far more labels move it;
  - augmentation: the readout fitted on the training images answered at the starting program
    *and* at K perturbed programs W0 + βU (what the estimator's queries already pay for), tested
    at W0 — whether the paid perturbed answers could serve as extra training data.

The in-process model answers (same network, same PNG bytes as an API). Usage:

    python bench/headroom.py                        # digits and Fashion-MNIST, ~10 min on 2 cores
    python bench/headroom.py --datasets digits --seeds 2
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
from barapi.mock.model import ImageNetModel

from barapi.config import PRESETS
from barapi.data import Split, load_split
from barapi.method.program import Program, initial_parameters
from barapi.method.streams import Stream, generator
from barapi.method.estimators import unit_sphere
from barapi.method.readout import LinearReadout

WORK = Path(__file__).resolve().parent / ".work"
RESULTS = Path(__file__).resolve().parent / "results"
PROGRAM_SCALES = [0.005, 0.5, 1.0, 2.0]  # std of W's entries; the default starts at 0.005
TRAIN_PER_CLASS = [10, 25, 50, 100]
PERTURBED_PROGRAMS = [0, 2, 4, 8]


def answers(model: ImageNetModel, program: Program, w: np.ndarray, images: np.ndarray) -> np.ndarray:
    encoded = program.encode_batch(w, images)
    return np.concatenate([model.classify(encoded[i : i + 32]) for i in range(0, len(encoded), 32)])


def readout_accuracy(model: ImageNetModel, program: Program, w: np.ndarray, split: Split, l2: float, extra_w: list[np.ndarray] = ()) -> float:
    """Test accuracy at W of the readout fitted on the training images answered at W and at
    each program of ``extra_w``."""
    fitting = np.concatenate([answers(model, program, v, split.x_train) for v in [w, *extra_w]])
    readout = LinearReadout.fit(fitting, np.tile(split.y_train, 1 + len(extra_w)), split.n_classes, l2)
    return float(np.mean(np.argmax(readout.target_scores(answers(model, program, w, split.x_test)), axis=1) == split.y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="digits,fashion-mnist")
    parser.add_argument("--seeds", type=int, default=3, help="random programs per scale")
    parser.add_argument("--test-size", type=int, default=500)
    args = parser.parse_args()
    model = ImageNetModel(home=WORK / "home")
    method = PRESETS["default"]
    program = Program(method.geometry)
    lines = [f"`python bench/headroom.py {' '.join(sys.argv[1:])}` (2-core CPU, {time.strftime('%Y-%m-%d')}); "
             f"default geometry, readout L2 {method.readout_l2}, {args.test_size} test images", ""]
    for dataset in args.datasets.split(","):
        split = load_split(dataset, embed_size=method.geometry.embed_size, train_per_class=50, test_size=args.test_size, seed=0)
        lines += [f"### {dataset}: random programs, 50 training images per class", "",
                  "| std of W | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " |", "|---|" + "---|" * args.seeds]
        for scale in PROGRAM_SCALES:
            cells = [readout_accuracy(model, program, initial_parameters(method.geometry, scale, generator(seed, Stream.INIT)), split, method.readout_l2)
                     for seed in range(args.seeds)]
            lines.append(f"| {scale} | " + " | ".join(f"{a:.1%}" for a in cells) + " |")
            print(f"  {dataset} / programs of std {scale}: {cells}", file=sys.stderr, flush=True)
        w0 = initial_parameters(method.geometry, method.init_scale, generator(0, Stream.INIT))
        lines += ["", f"### {dataset}: the starting program, more or fewer labelled images", "",
                  "| training images per class | " + " | ".join(map(str, TRAIN_PER_CLASS)) + " |", "|---|" + "---|" * len(TRAIN_PER_CLASS)]
        # One test set for every column: nested training subsets of the largest split.
        largest = load_split(dataset, embed_size=method.geometry.embed_size, train_per_class=max(TRAIN_PER_CLASS), test_size=args.test_size, seed=0)
        cells = []
        for per_class in TRAIN_PER_CLASS:
            chosen = np.concatenate([np.flatnonzero(largest.y_train == c)[:per_class] for c in range(largest.n_classes)])
            subset = dataclasses.replace(largest, x_train=largest.x_train[chosen], y_train=largest.y_train[chosen])
            cells.append(readout_accuracy(model, program, w0, subset, method.readout_l2))
            print(f"  {dataset} / {per_class} per class: {cells[-1]:.3f}", file=sys.stderr, flush=True)
        lines += ["| test accuracy | " + " | ".join(f"{a:.1%}" for a in cells) + " |", ""]
        rng = np.random.default_rng([0, 0xA06])
        perturbed = [w0 + method.beta * unit_sphere(rng, w0.shape) for _ in range(max(PERTURBED_PROGRAMS))]
        cells = [readout_accuracy(model, program, w0, split, method.readout_l2, perturbed[:k]) for k in PERTURBED_PROGRAMS]
        print(f"  {dataset} / perturbed programs {PERTURBED_PROGRAMS}: {cells}", file=sys.stderr, flush=True)
        lines += [f"### {dataset}: readout also fitted on answers at K perturbed programs W0 + βU (β = {method.beta})", "",
                  "| K | " + " | ".join(map(str, PERTURBED_PROGRAMS)) + " |", "|---|" + "---|" * len(PERTURBED_PROGRAMS),
                  "| test accuracy at W0 | " + " | ".join(f"{a:.1%}" for a in cells) + " |", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "headroom.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
