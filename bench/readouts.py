"""Is the linear readout what holds the portfolio back? A nonlinear one on the same answers, no query.

Issue #22's second target (above the no-API baseline at some V ≤ 48) is missed on most cells,
with 48 random programs read by barapi's linear readout. This asks whether a nonlinear readout
over the same 48 views' answers would close the gap: for each cell and seed whose store holds the
shared-200 rebuild of the ``random-48`` row (``bench/portfolio.py --shared-200``), the cached
answers on the training images and the shared 200 test images are read by

- ``linear``: logistic regression on the standardised log-scores (barapi's readout, here
  scikit-learn's, C by cross-validated log-loss);
- ``rbf``: a support-vector machine with an RBF kernel on the same features, C and the kernel's
  width by cross-validated accuracy;

both tuned on the same 5 stratified folds of the training images, and reported with their
cross-validated accuracy there (500 images for the digits, 100 for a Fashion pair) and on the
200. One line a cell and seed in ``bench/results/readouts.jsonl``; a rerun skips what is there.

    python bench/readouts.py --combos coarse-10/digits coarse-10/pullover-coat
    python bench/readouts.py --report          # readouts.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from barapi.method.portfolio import PortfolioSearch
from barapi.method.readout import features
from barapi.data import run_split
from barapi.mock.model import ImageNetModel
from barapi.store import Store
from harness.cells import in_process, SHARED_TEST, WORK, cached_candidates, portfolio_config, portfolio_measured
from harness.results import RESULTS, read_lines

MEASURED = RESULTS / "readouts.jsonl"
VIEWS = 48


def cached_answers(combo: str, seed: int, network: ImageNetModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(train features, train labels, test features, test labels) of the random-48 row's
    shared-200 rebuild, from its store's cache; None where the store lacks it."""
    model, task = combo.split("/")
    store = Store(WORK / f"portfolio-{model}-{task}-{seed}")
    config = portfolio_config(task, seed, SHARED_TEST, VIEWS, VIEWS)
    config = config.model_copy(update={"name": f"{config.name}-shared-{SHARED_TEST}"})
    if not store.has_run(config.name):
        return None
    classifier = in_process(model, network)
    split = run_split(config)
    search = PortfolioSearch(VIEWS, split.n_classes, config.method.candidate_family)
    cached = cached_candidates(classifier, store, config, search, split.x_train, split.x_test)
    if cached is None:
        return None
    _, (train, test) = cached
    return features(np.hstack(train)), split.y_train, features(np.hstack(test)), split.y_test


def compare(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    width = x_train.shape[1]
    readouts = {
        "linear": GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
                               {"logisticregression__C": [10.0**k for k in range(-3, 2)]}, cv=folds, scoring="neg_log_loss"),
        "rbf": GridSearchCV(make_pipeline(StandardScaler(), SVC()),
                            {"svc__C": [1.0, 10.0, 100.0], "svc__gamma": [g / width for g in (0.1, 0.3, 1.0, 3.0)]}, cv=folds),
    }
    result: dict = {"sklearn": sklearn.__version__}
    for name, search in readouts.items():
        search.fit(x_train, y_train)
        # The chosen setting's accuracy on the same folds (the linear one was chosen by log-loss).
        cv_accuracy = cross_val_score(search.best_estimator_, x_train, y_train, cv=folds).mean()
        result[name] = {"cv_accuracy": round(float(cv_accuracy), 4), "accuracy_200": float((search.predict(x_test) == y_test).mean()),
                        "chosen": {k.split("__")[1]: v for k, v in search.best_params_.items()}}
    return result


def measured() -> list[dict]:
    return read_lines(MEASURED)


def measure(combos: list[str], seeds: list[int]) -> None:
    network = ImageNetModel(home=WORK / "home", threads=1)
    done = {(m["combo"], m["seed"]) for m in measured()}
    for combo in combos:
        for seed in seeds:
            if (combo, seed) in done:
                continue
            data = cached_answers(combo, seed, network)
            if data is None:
                print(f"{combo} seed {seed}: no shared-200 random-48 run in its store; run bench/portfolio.py --shared-200 first")
                continue
            entry = {"combo": combo, "seed": seed, "views": VIEWS, "training_images": len(data[1])} | compare(*data) | {"date": time.strftime("%Y-%m-%d")}
            with MEASURED.open("a") as f:
                f.write(json.dumps(entry) + "\n")
            print(json.dumps(entry), flush=True)


def report() -> None:
    entries = measured()
    summary = lambda values: f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else f"{100 * values[0]:.1f}"  # noqa: E731
    lines = ["# A nonlinear readout over 48 random programs' answers", "",
             "`python bench/readouts.py --combos …` then `--report`. The `random-48` row's cached answers "
             "(no query) read by a linear readout (logistic regression on the standardised log-scores, C by "
             "cross-validated log-loss) and by an RBF support-vector machine (C and width by cross-validated "
             "accuracy), tuned on the same 5 folds of the training images. Accuracy by cross-validation on the "
             "training images and on the shared 200 test images; mean ± sd over seeds. Measured "
             f"{', '.join(sorted({e['date'] for e in entries}))} with scikit-learn {', '.join(sorted({e['sklearn'] for e in entries}))}.", "",
             "barapi's own readout (the run's) and the raw pixels' logistic regression on the same 200 (both from "
             "`portfolio.jsonl`) are shown beside them.", "",
             "| cell | seeds | training images | linear, CV | RBF, CV | linear, 200 | RBF, 200 | barapi's readout, 200 | raw pixels, 200 |",
             "|---|---|---|---|---|---|---|---|---|"]
    on_200 = {(e["combo"], e["row"], e["seed"]): e["accuracy_200"] for e in portfolio_measured() if "accuracy_200" in e}
    for combo in dict.fromkeys(e["combo"] for e in entries):
        rows = [e for e in entries if e["combo"] == combo]
        pick = lambda readout, key: [r[readout][key] for r in rows]  # noqa: E731
        lines.append(f"| {combo} | {len(rows)} | {rows[0]['training_images']} | {summary(pick('linear', 'cv_accuracy'))} | "
                     f"{summary(pick('rbf', 'cv_accuracy'))} | {summary(pick('linear', 'accuracy_200'))} | {summary(pick('rbf', 'accuracy_200'))} | "
                     f"{summary([on_200[combo, f'random-{VIEWS}', r['seed']] for r in rows])} | "
                     f"{summary([on_200[combo, 'noapi', r['seed']] for r in rows])} |")
    (RESULTS / "readouts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--combos", nargs="*", default=[])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.combos:
        measure(args.combos, [int(s) for s in args.seeds.split(",")])
    report()


if __name__ == "__main__":
    main()
