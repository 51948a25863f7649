"""Tried for the portfolio's first target: does the default portfolio choose and read better when
each training image is also sent mirrored (left to right)?

The default (8 views chosen of 48 cosine-band candidates, bench/portfolio.py's
``selected-8-bands``) stays under the converged full-resolution bound on both coarse-5 Fashion
pairs. Its readout is fitted on 100 images; a mirrored T-shirt is a T-shirt, so sending each
training image twice (9,600 training queries, within the target's 10,000) doubles what the
selection and the readout learn from, while a prediction still sends the image itself through 8
views. Both rows here are computed from one set of answers: ``plain`` chooses on the training
images alone (it reproduces ``selected-8-bands``), ``mirrored`` on them and their mirror images,
an image and its mirror always in the same fold. Answers come from the cell's portfolio store
(bench/.work), so only the mirrored images and the test images of newly chosen views are paid.

    python bench/mirrored.py            # coarse-5 × the Fashion pairs, seeds 0–2
    python bench/mirrored.py --report   # bench/results/mirrored.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from harness.cells import in_process, WORK, mean_sd, portfolio_config
from harness.results import RESULTS, read_lines

from barapi.data import run_split
from barapi.method.labels import fill_missing
from barapi.method.portfolio import DEFAULT_CANDIDATES, DEFAULT_VIEWS, PortfolioSearch
from barapi.method.program import Program, starting_parameters
from barapi.method.selection import stratified_folds
from barapi.mock.model import ImageNetModel
from barapi.money import Budget
from barapi.run.queries import QueryEngine
from barapi.store import Store

MEASURED = RESULTS / "mirrored.jsonl"
CELLS = ["coarse-5/tshirt-shirt", "coarse-5/pullover-coat"]


def measured() -> list[dict]:
    return read_lines(MEASURED)


def measure(combos: list[str], seeds: list[int], threads: int) -> None:
    network = ImageNetModel(home=WORK / "home", threads=threads)
    done = {(e["combo"], e["seed"]) for e in measured()}
    for seed in seeds:
        for combo in combos:
            if (combo, seed) in done:
                continue
            started, (model, task) = time.monotonic(), combo.split("/")
            classifier = in_process(model, network)
            config = portfolio_config(task, seed, 2000, DEFAULT_CANDIDATES, DEFAULT_VIEWS, "bands")
            split, program = run_split(config), Program(config.method.geometry)
            engine = QueryEngine(classifier, Store(WORK / f"portfolio-{model}-{task}-{seed}"), Budget(max_usd=None, max_queries=None, per_1k=0.0),
                                 "mirrored")
            vocabulary = classifier.labels()
            index = {label: i for i, label in enumerate(vocabulary)}

            def answers(w: np.ndarray, images: np.ndarray) -> np.ndarray:
                return np.stack([fill_missing(a, vocabulary, index) for a in engine.score(program.encode_batch(w, images))])

            search = PortfolioSearch(DEFAULT_VIEWS, split.n_classes, "bands")
            start = starting_parameters(config.method, seed)
            programs = [search.candidate(k, start, seed) for k in range(DEFAULT_CANDIDATES)]
            plain = [answers(w, split.x_train) for w in programs]
            mirrored = [np.vstack([a, answers(w, split.x_train[:, :, ::-1])]) for a, w in zip(plain, programs)]
            y = split.y_train
            # The folds deal each class's images in turn, so with 50 a class an image's mirror
            # falls in its fold: no fold is judged on a mirror of what it was fitted on.
            folds = stratified_folds(np.concatenate([y, y]))
            assert (folds[: len(y)] == folds[len(y):]).all()
            entry = {"combo": combo, "seed": seed}
            for row, told, labels in (("plain", plain, y), ("mirrored", mirrored, np.concatenate([y, y]))):
                chooser = PortfolioSearch(DEFAULT_VIEWS, split.n_classes, "bands")
                for dense in told:
                    chooser.tell(dense)
                portfolio = chooser.choose(labels, programs)
                test = np.hstack([answers(programs[c], split.x_test) for c in portfolio.chosen])
                entry[row] = {"accuracy": float((np.argmax(portfolio.target_scores(test), axis=1) == split.y_test).mean()),
                              "validation_loss": portfolio.validation_loss, "chosen": [int(c) for c in portfolio.chosen]}
            entry |= {"test_images": len(split.y_test), "training_queries": {"plain": DEFAULT_CANDIDATES * len(y), "mirrored": 2 * DEFAULT_CANDIDATES * len(y)},
                      "seconds": round(time.monotonic() - started), "date": time.strftime("%Y-%m-%d")}
            with MEASURED.open("a") as handle:
                handle.write(json.dumps(entry) + "\n")
            print(json.dumps(entry), flush=True)


def report() -> None:
    entries = measured()
    lines = ["# The default portfolio chosen and read on mirrored training images too", "",
             f"`python bench/mirrored.py --report`, from `bench/results/mirrored.jsonl` (why and how: the script's docstring). "
             f"{entries[0]['test_images']:,} held-out images; 8 views of 48 cosine bands either way, 8 queries a prediction.", "",
             "| cell | seeds | plain (4,800 training queries) | mirrored too (9,600) | mirrored − plain, by seed | CV log-loss plain → mirrored |",
             "|---|---|---|---|---|---|"]
    for combo in dict.fromkeys(e["combo"] for e in entries):
        cell = [e for e in entries if e["combo"] == combo]
        plain, mirrored = ([e[row]["accuracy"] for e in cell] for row in ("plain", "mirrored"))
        losses = [statistics.mean(e[row]["validation_loss"] for e in cell) for row in ("plain", "mirrored")]
        gains = ", ".join(f"{100 * (m - p):+.2f}" for p, m in zip(plain, mirrored))
        lines.append(f"| {combo} | {len(cell)} | {mean_sd(plain)} | {mean_sd(mirrored)} | {gains} | {losses[0]:.3f} → {losses[1]:.3f} |")
    (RESULTS / "mirrored.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--combos", nargs="+", default=CELLS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report:
        report()
    else:
        measure(args.combos, args.seeds, args.threads)


if __name__ == "__main__":
    main()
