"""Benchmark of the BAR engine on digits against the real model (issue: BAR engine).

Prints, in one run, one table:
  - test accuracy against training queries (label mapping + training; evaluation is measurement
    and not counted) for each preset, with the zero-program baseline (label mapping only);
  - server throughput: images/s through HTTP (the TorchServe adapter against `barapi mock
    serve`) against the same model called in-process, as a ratio.

Accuracy runs use the in-process model: the same network and the same PNG bytes an API would
get, without HTTP overhead, so the table is about the method. Usage:

    python bench/engine.py                      # full: budgets up to 50,000 queries
    python bench/engine.py --budgets 2000,5000 --presets default --test-size 200   # quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from barapi.adapters.torchserve import TorchServeClassifier
from barapi.config import PRESETS, DataConfig, ProviderConfig, RunConfig
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.method.labels import frequency_mapping
from barapi.mock.server import MockServer
from barapi.run.strategies import optimizer_for
from barapi.method.mapping import DEFAULT_LABELS_PER_CLASS
from barapi.method.program import Program, initial_parameters
from barapi.config import Geometry
from barapi.store import Store
from barapi.run.trainer import Trainer

WORK = Path(__file__).resolve().parent / ".work"
# Ablations measured beside the presets (name → settings over the default preset).
VARIANTS: dict[str, dict] = {
    "default, random start (W0 ~ N(0, 0.5²), one-sided q=10, lr 0.1)": {"init_scale": 0.5, "estimator": "one-sided", "q": 10, "lr": 0.1},
}


def mapping_queries(config: RunConfig) -> int:
    return config.data.train_per_class * 10  # digits: 10 classes


def flat_canvas_accuracy(preset: str, classifier: InProcessClassifier, test_size: int, seed: int) -> float:
    """P = 0 exactly (a flat grey canvas), with the frequency mapping built from it."""
    method = PRESETS[preset].model_copy(update={"mapping": "frequency"})
    store = Store(Path(tempfile.mkdtemp(prefix="bench-flat-", dir=WORK)))
    trainer = Trainer(RunConfig(name="flat", seed=seed, provider=ProviderConfig(name="local"), data=DataConfig(test_size=test_size), method=method), classifier, store)
    w0 = np.zeros(method.geometry.parameter_shape)
    dense = trainer.dense(trainer.engine.score(trainer.program.encode_batch(w0, trainer.split.x_train)), classifier.labels())
    mapping = frequency_mapping(dense, trainer.split.y_train, trainer.split.n_classes, method.labels_per_class or DEFAULT_LABELS_PER_CLASS)
    scores = trainer.predict_scores([w0], mapping, trainer.split.x_test, classifier.labels())
    return float(np.mean(np.argmax(scores, axis=1) == trainer.split.y_test))


def method_for(name: str):
    return PRESETS[name] if name in PRESETS else PRESETS["default"].model_copy(update=VARIANTS[name])


def accuracy_curve(preset: str, budgets: list[int | None], classifier: InProcessClassifier, test_size: int, seed: int) -> tuple[float, list[float | None]]:
    """Train once, evaluating when the training queries reach each budget (the run is extended
    between budgets exactly as `barapi resume` would extend it)."""
    method = method_for(preset)
    data = DataConfig(test_size=test_size)
    per_iteration = method.batch_size * optimizer_for(method).queries_per_sample
    store = Store(Path(tempfile.mkdtemp(prefix="bench-curve-", dir=WORK)))
    base = RunConfig(name="bench", seed=seed, provider=ProviderConfig(name="local"), data=data, method=method)
    trainer = Trainer(base, classifier, store)
    state = trainer.start()  # the baseline needs the mapping without a step
    zero = trainer.test_accuracy(state)
    accuracies: list[float | None] = []
    for budget in budgets:
        if budget is None:
            accuracies.append(None)
            continue
        iterations = (budget - mapping_queries(base)) // per_iteration
        if iterations < 1:
            accuracies.append(None)
            continue
        config = base.model_copy(update={"method": method.model_copy(update={"iterations": iterations})})
        accuracies.append(Trainer(config, classifier, store).run().test_accuracy)
        print(f"  {preset}: {budget:,} queries ({iterations} iterations) → {accuracies[-1]:.3f}", file=sys.stderr, flush=True)
    return zero, accuracies


def throughput(model: ImageNetModel, images: list[bytes]) -> tuple[float, float]:
    """(in-process images/s, HTTP images/s) on the same images."""
    in_process = InProcessClassifier(model)
    in_process.predict(images[:32])
    start = time.perf_counter()
    in_process.predict(images)
    local_rate = len(images) / (time.perf_counter() - start)
    server = MockServer("127.0.0.1", 0, model)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with httpx.Client() as client:
            adapter = TorchServeClassifier(client, base_url=url, concurrency=8)
            adapter.predict(images[:32])
            start = time.perf_counter()
            adapter.predict(images)
            http_rate = len(images) / (time.perf_counter() - start)
    finally:
        server.shutdown()
        server.server_close()
    return local_rate, http_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="2000,5000,10000,20000,50000")
    parser.add_argument("--presets", default="default,paper", help="comma-separated; 'name:N' stops that row at N queries")
    parser.add_argument("--variants", action="store_true", help="also run the ablations in VARIANTS (up to 20,000 queries)")
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--throughput-images", type=int, default=400)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    model = ImageNetModel(home=WORK / "home")
    classifier = InProcessClassifier(model)
    budgets = [int(b) for b in args.budgets.split(",")]

    flat = flat_canvas_accuracy("default", classifier, args.test_size, args.seed)
    rows = []
    plan = [tuple(p.split(":")) if ":" in p else (p, None) for p in args.presets.split(",")]
    plan += [(name, "20000") for name in VARIANTS] if args.variants else []
    for preset, limit in plan:
        print(f"training {preset}…", file=sys.stderr, flush=True)
        capped = [b if limit is None or b <= int(limit) else None for b in budgets]
        zero, curve = accuracy_curve(preset, capped, classifier, args.test_size, args.seed)
        rows.append((preset, zero, curve))

    geometry = Geometry(program_resolution=16)
    rng = np.random.default_rng(0)
    images = Program(geometry).encode_batch(initial_parameters(geometry, 0.5, rng), rng.uniform(-1, 1, (args.throughput_images, 64, 64, 3)))
    local_rate, http_rate = throughput(model, images)

    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"

    print(f"\nDigits, 50 training images per class, {args.test_size} test images, seed {args.seed}; chance = 10.0 %")
    print(f"Flat canvas (P = 0, frequency mapping from it): {cell(flat)}")
    print("Zero-program: the random starting W0 and the label mapping, no training step.")
    print("Columns: test accuracy after that many training queries (label mapping + training).")
    print("| preset | zero-program | " + " | ".join(f"{b:,} q" for b in budgets) + " |")
    print("|---|---|" + "---|" * len(budgets))
    for preset, zero, curve in rows:
        print(f"| {preset} | {cell(zero)} | " + " | ".join(cell(a) for a in curve) + " |")
    print("\n| throughput | images/s |\n|---|---|")
    print(f"| model in-process (batches of 32) | {local_rate:.1f} |")
    print(f"| HTTP, TorchServe adapter → mock server (8 parallel) | {http_rate:.1f} |")
    print(f"| ratio HTTP / in-process | {http_rate / local_rate:.2f} |")


if __name__ == "__main__":
    main()
