"""Many views, one readout (issue: the portfolio): barapi's own runs, measured on 2,000 held-out images.

For each model × task cell (the local server's models in process, ``bench/fewlabel.py``'s
cells) and seed, on one split shared by all rows (50 training images per class, split seed 0,
``--test-size`` held-out images, 2,000 by default: 1,297 for the digits) these rows:

- ``noapi``: logistic regression on the raw 28×28 pixels of the same training images, C by
  5-fold cross-validation on them (what a user could do without the API);
- ``random-V``: the first V candidates (the run's start, then random programs) all served, one
  readout over their answers (``barapi train --candidates V --views V``), V in ``--views``;
- ``selected-V``: V views chosen of ``--candidates`` by cross-validation on the training images
  (``barapi train --candidates N --views V``);

each a real ``Trainer`` run (budget, cache, ledger), so the figures are what the product
reports: test accuracy, training queries (label mapping + candidates; evaluation is
measurement), queries per predicted image. Runs of one cell and seed share one store, so every
candidate's answers are paid once whatever rows ask for them. Each measurement is one line of
``bench/results/portfolio.jsonl``, written as soon as it is made; a rerun skips what is there.

    python bench/portfolio.py --targets                 # the issue's three cells first
    python bench/portfolio.py --report                  # portfolio.md from what is measured
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from barapi.config import PRESETS, DataConfig, MethodConfig, ProviderConfig, RunConfig
from barapi.data import run_split
from barapi.mock.heads import coarse_model, imagenet_model, trained_project
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.store import Store
from barapi.trainer import Trainer

BENCH = Path(__file__).resolve().parent
WORK, RESULTS = BENCH / ".work", BENCH / "results"
MEASURED = RESULTS / "portfolio.jsonl"
TASKS = {
    "tshirt-shirt": "fashion-mnist:T-shirt/top,Shirt",
    "pullover-coat": "fashion-mnist:Pullover,Coat",
    "digits": "digits",
    "digits-3v8": "digits:3,8",
}
TARGETS = ["coarse-5/tshirt-shirt", "coarse-5/pullover-coat", "project/digits"]
RANDOM_VIEWS = [1, 2, 4, 8, 16, 32, 48]
SELECTED_VIEWS = [1, 2, 4, 8]
TRAIN_PER_CLASS, SPLIT_SEED = 50, 0
NO_API_SIDE = 28


def served_model(name: str, network: ImageNetModel):  # noqa: ANN201 - a ServedModel
    if name == "imagenet":
        return imagenet_model(network.name, network.classes)
    if name == "project":
        return trained_project("project", "fashion-mnist", network.classify, network.name, network.size, WORK / "home")
    return coarse_model(name)


def run_config(task: str, seed: int, test_size: int, candidates: int, views: int) -> RunConfig:
    method = MethodConfig.model_validate(PRESETS["default"].model_dump() | {"iterations": 0, "candidates": candidates, "views": views})
    data = DataConfig(dataset=TASKS[task], train_per_class=TRAIN_PER_CLASS, test_size=test_size, split_seed=SPLIT_SEED)
    return RunConfig(name=f"c{candidates}-v{views}", seed=seed, provider=ProviderConfig(name="local"), data=data, method=method)


def no_api(task: str, seed: int, test_size: int) -> tuple[float, int]:
    from sklearn.linear_model import LogisticRegressionCV

    config = run_config(task, seed, test_size, 1, 1)
    method = config.method.model_copy(update={"geometry": config.method.geometry.model_copy(update={"embed_size": NO_API_SIDE})})
    split = run_split(config.model_copy(update={"method": method}))
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    model = LogisticRegressionCV(Cs=[10.0**k for k in range(-4, 3)], cv=5, max_iter=2000, random_state=seed)
    model.fit(flat(split.x_train), split.y_train)
    return float((model.predict(flat(split.x_test)) == split.y_test).mean()), len(split.y_test)


def measured() -> list[dict]:
    if not MEASURED.exists():
        return []
    return [json.loads(line) for line in MEASURED.read_text().splitlines() if line.strip()]


def record(entry: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    with MEASURED.open("a") as handle:
        handle.write(json.dumps(entry | {"date": time.strftime("%Y-%m-%d")}) + "\n")
    print(json.dumps(entry), flush=True)


def measure(combos: list[str], seeds: list[int], rows: list[str] | None, test_size: int, candidates: int, threads: int) -> None:
    network = ImageNetModel(home=WORK / "home", threads=threads)
    done = {(m["combo"], m["row"], m["seed"]) for m in measured()}
    for seed in seeds:
        for combo in combos:
            model, task = combo.split("/")
            if (combo, "noapi", seed) not in done:
                accuracy, images = no_api(task, seed, test_size)
                record({"combo": combo, "row": "noapi", "seed": seed, "accuracy": accuracy, "test_images": images,
                        "training_queries": 0, "queries_per_prediction": 0})
            classifier = InProcessClassifier(network, served=served_model(model, network))
            store = Store(WORK / f"portfolio-{model}-{task}-{seed}")
            # The product's rows first; the wide random portfolios (V queries per prediction) last.
            planned = [(f"selected-{v}", candidates, v) for v in SELECTED_VIEWS] + [(f"random-{v}", v, v) for v in RANDOM_VIEWS]
            for row, n, v in planned:
                if (combo, row, seed) in done or (rows and row not in rows):
                    continue
                config = run_config(task, seed, test_size, n, v)
                split = run_split(config)
                started = time.monotonic()
                result = Trainer(config, classifier, store, split=split).run()  # resumes a run a kill interrupted
                record({"combo": combo, "row": row, "seed": seed, "accuracy": result.test_accuracy, "test_images": len(split.y_test),
                        "candidates": n, "views": result.views, "training_queries": n * len(split.y_train),
                        "queries_per_prediction": result.queries_per_prediction, "seconds": round(time.monotonic() - started, 1)})


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f} (1 seed)"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def report() -> None:
    entries = measured()
    combos = list(dict.fromkeys(e["combo"] for e in entries))
    rows = ["noapi"] + [f"random-{v}" for v in RANDOM_VIEWS] + [f"selected-{v}" for v in SELECTED_VIEWS]
    lines = [
        "# Many views, one readout — barapi's portfolio runs",
        "",
        "`python bench/portfolio.py --targets` (then `--report`). Each cell: 50 training images per class, split seed 0, "
        "the held-out test images shown (2,000, or all the digits have: 1,297), shared by every row; seeds as counted, "
        "mean ± sd. Nothing is chosen on the test images: views are selected by 5-fold cross-validation on the training "
        "images, and the readout's L2 by the same folds. Training queries: the training images through every candidate "
        "(the first one's is the label mapping's pass); evaluation is measurement and not counted.",
        "",
    ]
    for combo in combos:
        lines += [f"## {combo}", "", "| row | test accuracy, % | seeds | training queries | queries per predicted image |", "|---|---|---|---|---|"]
        for row in rows:
            cell = [e for e in entries if e["combo"] == combo and e["row"] == row and e["accuracy"] is not None]
            if not cell:
                continue
            name = {"noapi": "no API (raw pixels, logistic regression)"}.get(row, row.replace("random-", "random views, V = ").replace("selected-", f"selected of {cell[0].get('candidates')}, V = "))
            lines.append(f"| {name} | {summary([e['accuracy'] for e in cell])} | {len(cell)} | {cell[0]['training_queries']:,} | {cell[0]['queries_per_prediction']} |")
        lines.append("")
    (RESULTS / "portfolio.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", action="store_true", help="the issue's three cells")
    parser.add_argument("--combos", default="", help="comma-separated model/task cells")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", default="", help="comma-separated rows (default: all); e.g. the cheap ones first")
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report:
        report()
        return
    combos = (TARGETS if args.targets else []) + [c for c in args.combos.split(",") if c]
    if not combos:
        sys.exit("nothing to measure: --targets or --combos")
    rows = [r for r in args.rows.split(",") if r]
    measure(combos, [int(s) for s in args.seeds.split(",")], rows, args.test_size, args.candidates, args.threads)


if __name__ == "__main__":
    main()
