"""The cells the few-label and portfolio benchmarks measure, shared by every script that reads
or extends them: the tasks and models, the split, how a cell's run is configured, the local
server's models in process, and where earlier answers are kept."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from harness.results import RESULTS, WORK, current, read_lines

from barapi.config import PRESETS, DataConfig, MethodConfig, ProviderConfig, RunConfig
from barapi.data import load_fashion_mnist, run_split, stratified_indices
from barapi.method.labels import fill_missing
from barapi.method.portfolio import PortfolioSearch
from barapi.method.program import Program, starting_parameters
from barapi.mock.heads import ServedModel, coarse_model, imagenet_model, trained_project
from barapi.mock.model import CROP_FRACTION, ImageNetModel, InProcessClassifier
from barapi.money import Budget
from barapi.run.planning import iterations_within, shaped
from barapi.run.queries import QueryEngine
from barapi.run.trainer import Trainer
from barapi.store import Store

MODELS = ("coarse-2", "coarse-5", "coarse-10", "project", "imagenet")
TASKS = {
    "tshirt-shirt": "fashion-mnist:T-shirt/top,Shirt",
    "pullover-coat": "fashion-mnist:Pullover,Coat",
    "digits": "digits",
    "digits-3v8": "digits:3,8",
}
# The project is trained on Fashion-MNIST: its Fashion-MNIST pairs are its own classes, not a
# reprogramming task, and its training images may be the task's test images. Left out.
COMBOS = [f"{m}/{t}" for m in MODELS for t in TASKS if not (m == "project" and t.endswith(("shirt", "coat")))]
TARGETS = ["coarse-5/tshirt-shirt", "coarse-5/pullover-coat", "project/digits"]
TRAIN_PER_CLASS, TEST_SIZE, SPLIT_SEED = 50, 200, 0
SHARED_TEST = TEST_SIZE  # bench/fewlabel.py's test set: the same training images, its test images among the portfolio's 2,000
NO_API_SIDE = 28
DEFAULT = PRESETS["default"]
# The local model sees the centre CROP_FRACTION of the 224 px canvas (resize to 256, crop 224):
# the "placed" programs live there (Geometry.visible_size).
VISIBLE = round(224 * CROP_FRACTION)
PLACED = {"visible_size": VISIBLE}
COSINE_8 = PLACED | {"basis": "cosine", "program_resolution": 8}
PORTFOLIO_RESULTS, WHITEBOX_RESULTS = RESULTS / "portfolio.jsonl", RESULTS / "whitebox.jsonl"


# "The API knows what the open model does not" (bench/value.py): a project trained on the eight
# Fashion-MNIST classes that are not T-shirt/top or Shirt, 1,000 images a class, read for T-shirt/Shirt.
RELATED_PROJECT = "fashion-mnist:Trouser,Pullover,Dress,Coat,Sandal,Sneaker,Bag,Ankle boot"
RELATED_PER_CLASS = 1000
# It does not (79.5 % through the API alone against Lite1's 84.2): the other classes say little
# about that pair. What does know more is a fine-grained tagger: eight style tags (four k-means
# clusters of each class's pixels), none of them the user's classes, fitted on the T-shirt/top
# and Shirt images that are not the task's (neither its 100 training nor its 2,000 test
# images), 1,000 a tag.
TAGGER_STYLES, TAGGER_PER_CLASS = 4, 1000
# bench/value.py's cells, 2,000 test images; where the target is not at the default 112 px of the
# 224 px canvas: the tagger was fitted on whole images, and by its tags alone it reads
# T-shirt/Shirt at 76.2 % sent at 112 px, 85.5 % at 192 px, 86.8 % whole (bench/tagger_tags.py).
VALUE_TEST_SIZE = 2000
EMBED = {"tagger-192": 192}


def served_model(name: str, network: ImageNetModel) -> ServedModel:
    if name == "imagenet":
        return imagenet_model(network.name, network.classes)
    if name == "project":
        return trained_project("project", "fashion-mnist", network.classify, network.name, network.size, WORK / "home")
    if name == "related":
        return trained_project("related", RELATED_PROJECT, network.classify, network.name, network.size, WORK / "home", per_class=RELATED_PER_CLASS)
    if name in ("tagger", "tagger-192"):  # tagger-192: the same API, the target sent at 192 px (bench/value.py)
        return trained_project("tagger", str(tagger_images()), network.classify, network.name, network.size, WORK / "home", per_class=TAGGER_PER_CLASS)
    return coarse_model(name)


def tagger_images(test_size: int = VALUE_TEST_SIZE) -> Path:
    """The tagger's images (an .npz of x, y, classes): Fashion-MNIST's T-shirt/top and Shirt images
    less the task's split, each labelled with its class's style cluster."""
    path = WORK / f"tagger-{TAGGER_STYLES}-{test_size}.npz"
    if path.is_file():
        return path
    from sklearn.cluster import KMeans

    images, labels, classes = load_fashion_mnist()
    pair = [classes.index(name) for name in ("T-shirt/top", "Shirt")]
    members = np.flatnonzero(np.isin(labels, pair))
    task_labels = np.searchsorted(pair, labels[members])  # the task's own relabelling (barapi.data._select)
    train, test = stratified_indices(task_labels, 2, TRAIN_PER_CLASS, test_size, np.random.default_rng([SPLIT_SEED, 0xDA7A]))
    free = np.setdiff1d(np.arange(len(members)), np.concatenate([train, test]))
    x, y, tags = [], [], []
    for c, name in enumerate(("tee", "shirt")):
        own = members[free[task_labels[free] == c]]
        styles = KMeans(TAGGER_STYLES, n_init=4, random_state=0).fit_predict(images[own].reshape(len(own), -1) / 255.0)
        x.append(images[own])
        y.append(len(tags) + styles)
        tags += [f"{name} style {s}" for s in range(TAGGER_STYLES)]
    WORK.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=np.concatenate(x), y=np.concatenate(y), classes=np.asarray(tags))
    return path


def value_config(cell: str, seed: int, method: MethodConfig, name: str, classifier: InProcessClassifier | None = None) -> RunConfig:
    """bench/value.py's run of ``cell`` ("model/task") with ``method``, the target at the cell's
    EMBED size; with ``classifier``, shaped as the product shapes a run for its label count."""
    model, task = cell.split("/")
    data = DataConfig(dataset=TASKS[task], train_per_class=TRAIN_PER_CLASS, test_size=VALUE_TEST_SIZE, split_seed=SPLIT_SEED)
    if model in EMBED:
        method = method.model_copy(update={"geometry": method.geometry.model_copy(update={"embed_size": EMBED[model]})})
    config = RunConfig(name=name, seed=seed, provider=ProviderConfig(name="local"), data=data, method=method, price_per_1k=1.20)
    return shaped(config, len(classifier.labels()), len(run_split(config).y_train)) if classifier is not None else config


def in_process(model: str, network: ImageNetModel) -> InProcessClassifier:
    """The local server's ``model`` (a cell's first part) as a classifier in this process."""
    return InProcessClassifier(network, served=served_model(model, network))


def each_cell(cells: list[str], seeds: list[int], threads: int) -> Iterator[tuple[int, str, str, str, InProcessClassifier]]:
    """(seed, cell, model, task, the cell's classifier) for each seed and, within it, each cell
    ("model/task"), every classifier on one in-process network."""
    network = ImageNetModel(home=WORK / "home", threads=threads)
    for seed in seeds:
        for cell in cells:
            model, task = cell.split("/")
            yield seed, cell, model, task, in_process(model, network)


def fewlabel_config(task: str, method: MethodConfig, seed: int, iterations: int | None = None, name: str = "bench") -> RunConfig:
    if iterations is not None:
        method = method.model_copy(update={"iterations": iterations})
    data = DataConfig(dataset=TASKS[task], train_per_class=TRAIN_PER_CLASS, test_size=TEST_SIZE, split_seed=SPLIT_SEED)
    return RunConfig(name=name, seed=seed, provider=ProviderConfig(name="local"), data=data, method=method)


def portfolio_config(task: str, seed: int, test_size: int, candidates: int, views: int, family: str = "random", seeded_by: str | None = None,
               refine: int = 0) -> RunConfig:
    method = MethodConfig.model_validate(PRESETS["default"].model_dump() | {"iterations": refine, "candidates": candidates, "views": views,
                                                                           "candidate_family": family})
    data = DataConfig(dataset=TASKS[task], train_per_class=TRAIN_PER_CLASS, test_size=test_size, split_seed=SPLIT_SEED)
    name = f"c{candidates}-v{views}" + ("" if family == "random" else f"-{family}")  # one run per row in the cell's store
    name += f"-from-{seeded_by.replace('/', '-')}" if seeded_by else ""
    name += f"-refined-{refine}" if refine else ""
    return RunConfig(name=name, seed=seed, provider=ProviderConfig(name="local"), data=data, method=method,
                     candidates_from=[f"adopted-{seeded_by.replace('/', '-')}"] if seeded_by else [])


def zeroth_order(classifier: InProcessClassifier, base: RunConfig, budgets: list[int], record, answers: AnswerStores) -> None:  # noqa: ANN001
    """Zero-program, then each budget, from one run extended as `barapi resume` extends it."""
    method = base.method
    store = answers.store_for(base, classifier.model_id)
    trainer = Trainer(base, classifier, store)
    state = trainer.start()  # the zero-program row: the mapping without a step
    record(0, trainer.test_accuracy(state))
    for budget in budgets:
        iterations = iterations_within(method, len(trainer.split.y_train), budget)
        if iterations >= 1:
            extended = base.model_copy(update={"method": method.model_copy(update={"iterations": iterations})})
            result = Trainer(extended, classifier, store, split=trainer.split).run()
            record(budget, result.test_accuracy, step_signal=result.step_signal, kept=(result.selection or {}).get("kept"))


class AnswerStores:
    """Where a run keeps its answers: a fresh store, or that of an earlier run of the same
    configuration (up to its length, and its start guard, which only chooses among programs the
    run reaches anyway) on the same model, given with --answers-from. The in-process model is
    deterministic, so its cached answers are what it would answer again: a rerun costs the
    encoding, not the model. (A run of the null row has the default's configuration: reusing its
    store costs the answers it lacks, and changes nothing else.)"""

    def __init__(self, folders: list[Path]) -> None:
        self.earlier: dict[tuple[str, str], list[tuple[Path, str]]] = {}  # (model, configuration) → [(store, run)]
        for database in (d for folder in folders for d in sorted(folder.glob("fewlabel-*/barapi.sqlite"))):
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
                for name, config in db.execute("select name, config from runs").fetchall():
                    model = db.execute("select model from ledger where run = ? limit 1", (name,)).fetchone()
                    if model:
                        self.earlier.setdefault((model[0], self.signature(json.loads(config))), []).append((database.parent, name))

    @staticmethod
    def signature(config: dict) -> str:
        config = {k: v for k, v in config.items() if k != "name"}
        config["method"] = {k: v for k, v in config["method"].items() if k not in ("keep_better_start", "iterations")}  # a run extends its iterations
        return json.dumps(config, sort_keys=True)

    def runs(self, config: RunConfig, model: str) -> list[tuple[Path, str]]:
        return self.earlier.get((model, self.signature(config.model_dump(mode="json"))), [])

    def store_for(self, config: RunConfig, model: str) -> Store:
        earlier = self.runs(config, model)
        if not earlier:
            return Store(Path(tempfile.mkdtemp(prefix="fewlabel-", dir=WORK)))
        print(f"  answers of an earlier run: {earlier[0][0]}", file=sys.stderr, flush=True)
        return Store(earlier[0][0])


def cached_candidates(classifier: InProcessClassifier, store: Store, config: RunConfig, search: PortfolioSearch,
                      *image_sets: np.ndarray) -> tuple[list[np.ndarray], list[list[np.ndarray]]] | None:
    """A portfolio run's candidate programs (as ``search`` draws them) and, for each image set,
    their answers on it read from the store's cache (dense over the vocabulary): no query. None
    unless all are cached."""
    method, program = config.method, Program(config.method.geometry)
    engine = QueryEngine(classifier, store, Budget(max_usd=None, max_queries=None, per_1k=0.0), config.name)
    vocabulary = classifier.labels()
    index = {label: i for i, label in enumerate(vocabulary)}
    start = starting_parameters(method, config.seed)
    programs = [search.candidate(k, start, config.seed) for k in range(method.candidates)]
    answers: list[list[np.ndarray]] = []
    for images in image_sets:
        answers.append([])
        for candidate in programs:
            cached = engine.cached(program.encode_batch(candidate, images))
            if cached is None:
                return None
            answers[-1].append(np.stack([fill_missing(a, vocabulary, index) for a in cached]))
    return programs, answers


def portfolio_measured() -> list[dict]:
    return read_lines(PORTFOLIO_RESULTS)


def portfolio_measured_once() -> list[dict]:
    """One entry per cell, row and seed, the first measured (a rerun may have written it again;
    later lines without an accuracy add figures to it)."""
    return list({(e["combo"], e["row"], e["seed"]): e for e in reversed(portfolio_measured()) if e.get("accuracy") is not None}.values())[::-1]


def whitebox_bounds() -> list[dict]:
    """bench/whitebox.py's converged white-box bounds, superseded runs left out."""
    return current(WHITEBOX_RESULTS)


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f} (1 seed)"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def by_parts(entry: dict) -> bool:
    """A white-box bound trained by steps on parts of the training images (--batch), a step of its count one pass."""
    return entry.get("batch", entry["train_images"]) < entry["train_images"]
