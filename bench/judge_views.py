"""Why the judge reads some APIs low: the paid block's cross-validated accuracy on the training
images when its views are chosen inside each fold (barapi.method.gain, the honest figure the judge
and the pool use) against views fixed before the folds, no query (the candidates' training answers
are read from bench/value.py's store of the cell and seed).

Rows: views chosen by forward selection inside each fold (5 folds, barapi's; and 10); chosen once
on every training image (flattered: the folds that score them chose them); all the candidates in
one block; the first 8 candidates; 8 drawn at random (3 draws, mean); the first candidate alone
(the run's start). Each row's figure is the share of the training images its readout, fitted
without their fold, gets right.

    python bench/judge_views.py                                   # tagger-192 and coarse-5 Pullover/Coat, seed 0
    python bench/judge_views.py --cells coarse-5/digits --seeds 0,1
    python bench/judge_views.py --report                          # judge_views.md from what is measured
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from unittest import mock

import numpy as np
from harness.cells import each_cell, value_config
from harness.results import RESULTS, WORK, read_lines

from barapi.config import PRESETS, RunConfig
from barapi.data import run_split
from barapi.method.gain import paid_out_of_fold, view_grams
from barapi.method.portfolio import CrossValidation, forward_selection
from barapi.method.selection import stratified_folds
from barapi.run import stages
from barapi.run.trainer import Trainer
from barapi.store import Store

MEASURED = RESULTS / "judge_views.jsonl"
CELLS = ["tagger-192/tshirt-shirt", "coarse-5/pullover-coat"]
VIEWS, DRAWS = 8, 3


class Answered(Exception):
    """Raised once the portfolio has its candidates' training answers: nothing more is needed."""

    def __init__(self, answers: list[np.ndarray]) -> None:
        self.answers = answers


def api_alone(cell: str, seed: int, classifier) -> RunConfig:  # noqa: ANN001
    """bench/value.py's "api-only" run of the cell (the default shape, no free view), renamed."""
    return value_config(cell, seed, PRESETS["default"].model_copy(update={"free_views": "none"}), "judge-views", classifier)


def candidates_answers(cell: str, seed: int, classifier) -> list[np.ndarray]:  # noqa: ANN001
    """Each candidate's dense answers on the training images, as the API-alone run of the cell
    read them (cached: no query)."""
    def stop(answers: list[np.ndarray], *args: object) -> None:
        raise Answered(answers)

    model, task = cell.split("/")
    config = api_alone(cell, seed, classifier)
    with mock.patch.object(stages, "nested_gain", stop):
        try:
            Trainer(config, classifier, Store(WORK / f"value-{model}-{task}-{seed}")).run()
        except Answered as answered:
            return answered.answers
    raise RuntimeError(f"{cell}: the run never judged its views")


def accuracy(grams: list[np.ndarray], labels: np.ndarray, n_classes: int, choose, folds: int = 5) -> float:  # noqa: ANN001
    """The share of images right by the block of the views ``choose(kept, cv)`` picks, fitted without their fold."""
    logs = paid_out_of_fold(grams, labels, n_classes, stratified_folds(labels, folds), choose)
    return float(np.mean(np.argmax(logs, axis=1) == labels))


def measure(answers: list[np.ndarray], labels: np.ndarray, n_classes: int) -> dict[str, float]:
    grams = view_grams(answers)
    views = min(VIEWS, len(grams))

    def nested(kept: np.ndarray, cv: CrossValidation) -> list[int]:
        return forward_selection([g[np.ix_(kept, kept)] for g in grams], views, cv)

    on_all = forward_selection(grams, views, CrossValidation(labels, n_classes))
    draws = [np.random.default_rng(draw).choice(len(grams), views, replace=False) for draw in range(DRAWS)]
    return {
        "chosen in each fold (5 folds)": accuracy(grams, labels, n_classes, nested),
        "chosen in each fold (10 folds)": accuracy(grams, labels, n_classes, nested, folds=10),
        "chosen on every image (flattered)": accuracy(grams, labels, n_classes, lambda kept, cv: on_all),
        f"all {len(grams)} candidates": accuracy(grams, labels, n_classes, lambda kept, cv: range(len(grams))),
        f"the first {views}": accuracy(grams, labels, n_classes, lambda kept, cv: range(views)),
        f"{views} at random ({DRAWS} draws, mean)": statistics.mean(accuracy(grams, labels, n_classes, lambda kept, cv: d) for d in draws),
        "the first alone (the start)": accuracy(grams, labels, n_classes, lambda kept, cv: [0]),
    }


def report() -> str:
    entries = read_lines(MEASURED)
    cells = list(dict.fromkeys((e["cell"], e["seed"]) for e in entries))
    rows = list(dict.fromkeys(row for e in entries for row in e["cv_accuracy"]))
    value = {(e["cell"], e["row"], e["seed"]): e["accuracy"] for e in read_lines(RESULTS / "value.jsonl") if e.get("accuracy") is not None}
    lines = ["# The paid block's views, chosen in each fold or fixed before", "",
             f"`python bench/judge_views.py`, {time.strftime('%Y-%m-%d')}: the API's candidates' answers on the 100 training images "
             "(bench/value.py's default shape, 48 candidates, 8 views), cross-validated accuracy of the API's block alone. Last rows: "
             "bench/value.py's test accuracy (2,000 images) of the API alone (its 8 views chosen on every training image) and of "
             "the best free row.", "",
             "| views | " + " | ".join(f"{cell} seed {seed}" for cell, seed in cells) + " |", "|---|" + "---|" * len(cells)]
    by = {(e["cell"], e["seed"]): e["cv_accuracy"] for e in entries}
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(f"{100 * by[key][row]:.0f}" if row in by[key] else "—" for key in cells) + " |")
    for name, rows_of in (("test: the API alone", ["api-only"]), ("test: the best free row", ["pixels", "lite1", "free"])):
        shown = [max((value[(cell, row, seed)] for row in rows_of if (cell, row, seed) in value), default=None) for cell, seed in cells]
        lines.append(f"| {name} | " + " | ".join("—" if v is None else f"{100 * v:.1f}" for v in shown) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        done = {(e["cell"], e["seed"]) for e in read_lines(MEASURED)}
        for seed, cell, _, _, classifier in each_cell(args.cells.split(","), [int(s) for s in args.seeds.split(",")], threads=1):
            if (cell, seed) in done:
                continue
            answers = candidates_answers(cell, seed, classifier)
            split = run_split(api_alone(cell, seed, classifier))
            entry = {"cell": cell, "seed": seed, "cv_accuracy": measure(answers, split.y_train, split.n_classes), "ts": time.time()}
            with MEASURED.open("a") as handle:
                handle.write(json.dumps(entry) + "\n")
            print(json.dumps(entry), flush=True)
    (RESULTS / "judge_views.md").write_text(report())
    print(report())


if __name__ == "__main__":
    main()
